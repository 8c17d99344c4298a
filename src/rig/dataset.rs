//! Reads the UCI layout: `profile.txt` plus one file per sensor, one row per 60 s cycle.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::topology::{RIG_SENSORS, RigSensor};

/// The condition labels of one cycle, as in `profile.txt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conditions {
    pub cooler: u8,
    pub valve: u8,
    pub pump: u8,
    pub accumulator: u8,
    pub stable: bool,
}

impl Conditions {
    /// The condition label of a labelled component (cooler, valve, pump, accumulator); the
    /// motor and the tank have none.
    pub fn label(&self, component: &str) -> Option<u8> {
        match component {
            "cooler" => Some(self.cooler),
            "valve" => Some(self.valve),
            "pump" => Some(self.pump),
            "accumulator" => Some(self.accumulator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cycle {
    pub conditions: Conditions,
    /// Per sensor of `RIG_SENSORS`, in that order: 60 values at 1 Hz.
    pub series: Vec<Vec<f64>>,
}

impl Cycle {
    /// Each sensor with its series.
    pub fn readings(&self) -> impl Iterator<Item = (&'static RigSensor, &Vec<f64>)> {
        RIG_SENSORS.iter().zip(&self.series)
    }

    /// The cycle as a scoring window: sensor id → values in time order.
    pub fn window(&self) -> HashMap<String, Vec<f64>> {
        self.readings().map(|(sensor, values)| (sensor.id.to_string(), values.clone())).collect()
    }

    /// The cycle as the real rig samples it (`RigSensor::native_rate_hz`): each 1 s value
    /// repeated at the sensor's rate, so the 1 s means are the data set's values again.
    pub fn native_window(&self) -> HashMap<String, Vec<f64>> {
        self.readings()
            .map(|(sensor, values)| {
                let per_second = sensor.native_rate_hz.round().max(1.0) as usize;
                (sensor.id.to_string(), values.iter().flat_map(|v| std::iter::repeat_n(*v, per_second)).collect())
            })
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
}

fn read(dir: &Path, name: &str) -> Result<(PathBuf, String), DatasetError> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map(|text| (path.clone(), text)).map_err(|source| DatasetError::Read { path, source })
}

fn numbers(path: &Path, line_no: usize, line: &str) -> Result<Vec<f64>, DatasetError> {
    line.split_ascii_whitespace()
        .map(|v| v.parse::<f64>().map_err(|e| DatasetError::Parse { path: path.to_owned(), line: line_no + 1, message: e.to_string() }))
        .collect()
}

/// Loads every cycle of `dir`; files must agree on the number of rows.
pub fn load(dir: &Path) -> Result<Vec<Cycle>, DatasetError> {
    let (profile_path, profile) = read(dir, "profile.txt")?;
    let mut cycles = Vec::new();
    for (i, line) in profile.lines().enumerate() {
        let v = numbers(&profile_path, i, line)?;
        if v.len() < 5 {
            return Err(DatasetError::Parse { path: profile_path.clone(), line: i + 1, message: "expected 5 labels".into() });
        }
        let conditions = Conditions { cooler: v[0] as u8, valve: v[1] as u8, pump: v[2] as u8, accumulator: v[3] as u8, stable: v[4] == 0.0 };
        cycles.push(Cycle { conditions, series: Vec::with_capacity(RIG_SENSORS.len()) });
    }
    for sensor in &RIG_SENSORS {
        let (path, text) = read(dir, &format!("{}.txt", sensor.file))?;
        let mut rows = 0;
        for (i, line) in text.lines().enumerate() {
            let values = numbers(&path, i, line)?;
            let cycle = cycles.get_mut(i).ok_or_else(|| DatasetError::Parse { path: path.clone(), line: i + 1, message: "more rows than profile.txt".into() })?;
            cycle.series.push(values);
            rows += 1;
        }
        if rows != cycles.len() {
            return Err(DatasetError::Parse { path, line: rows, message: format!("{rows} rows, profile.txt has {}", cycles.len()) });
        }
    }
    Ok(cycles)
}
