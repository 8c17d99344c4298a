//! Named parameter tensors (candle's view of the model's weights), a seeded random generator and
//! weight initialisation.
//!
//! candle's CPU random generator cannot be seeded (`Device::set_seed` fails on the CPU), so every
//! random number of training (initial weights, batch order) comes from the generator here,
//! which makes a run a pure function of its seed.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::TrainError;
use crate::model::{ModelError, Weight, Weights};

/// Parameters by name; a `BTreeMap` so iteration (and so the optimiser's order) is stable.
pub type Params = BTreeMap<String, Tensor>;

/// The parameters as the model stores them.
pub fn to_weights(params: &Params) -> Result<Weights, TrainError> {
    params.iter().map(|(name, t)| Ok((name.clone(), Weight { shape: t.dims().to_vec(), values: t.flatten_all()?.to_vec1::<f32>()? }))).collect()
}

/// The model's weights as tensors.
pub fn from_weights(weights: &Weights) -> Result<Params, TrainError> {
    weights.iter().map(|(name, w)| Ok((name.clone(), Tensor::from_slice(&w.values, w.shape.as_slice(), &Device::Cpu)?))).collect()
}

/// SplitMix64: tiny, fast, and good enough for initialisation and shuffling.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Adds a weight of `shape` drawn from N(0, gain² / fan_in) (He initialisation for gain √2).
pub fn normal(params: &mut Params, rng: &mut Rng, name: &str, shape: &[usize], fan_in: usize, gain: f64) -> Result<(), TrainError> {
    let sd = gain / (fan_in as f64).sqrt();
    let values: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| (rng.normal() * sd) as f32).collect();
    params.insert(name.into(), Tensor::from_vec(values, shape, &Device::Cpu)?);
    Ok(())
}

pub fn zeros(params: &mut Params, name: &str, shape: &[usize]) -> Result<(), TrainError> {
    params.insert(name.into(), Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu)?);
    Ok(())
}

/// The tensor `name`, checked against the expected shape so a wrong artifact fails at load time.
pub fn get(params: &Params, name: &str, shape: &[usize]) -> Result<Tensor, TrainError> {
    let t = params.get(name).ok_or_else(|| ModelError::Artifact(format!("tensor {name} is missing")))?;
    if t.dims() != shape {
        return Err(ModelError::Artifact(format!("tensor {name} has shape {:?}, expected {shape:?}", t.dims())).into());
    }
    Ok(t.clone())
}

/// A dense layer `x·W + b` on the last dimension of a 2- or 3-dimensional input.
#[derive(Debug, Clone)]
pub struct Linear {
    pub w: Tensor,
    pub b: Tensor,
}

impl Linear {
    pub fn init(params: &mut Params, rng: &mut Rng, name: &str, inputs: usize, outputs: usize, gain: f64) -> Result<(), TrainError> {
        normal(params, rng, &format!("{name}.w"), &[inputs, outputs], inputs, gain)?;
        zeros(params, &format!("{name}.b"), &[outputs])
    }

    pub fn load(params: &Params, name: &str, inputs: usize, outputs: usize) -> Result<Self, TrainError> {
        Ok(Linear { w: get(params, &format!("{name}.w"), &[inputs, outputs])?, b: get(params, &format!("{name}.b"), &[outputs])? })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_matmul(&self.w)?.broadcast_add(&self.b)
    }
}

/// A per-target classification head: one hidden layer, then logits.
#[derive(Debug, Clone)]
pub struct Head {
    hidden: Linear,
    out: Linear,
}

impl Head {
    pub fn init(params: &mut Params, rng: &mut Rng, name: &str, inputs: usize, hidden: usize, classes: usize) -> Result<(), TrainError> {
        Linear::init(params, rng, &format!("{name}.hidden"), inputs, hidden, 2f64.sqrt())?;
        Linear::init(params, rng, &format!("{name}.out"), hidden, classes, 1.0)
    }

    pub fn load(params: &Params, name: &str, inputs: usize, hidden: usize, classes: usize) -> Result<Self, TrainError> {
        Ok(Head { hidden: Linear::load(params, &format!("{name}.hidden"), inputs, hidden)?, out: Linear::load(params, &format!("{name}.out"), hidden, classes)? })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.out.forward(&self.hidden.forward(x)?.relu()?)
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_generator_is_reproducible_and_roughly_normal() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f64> = (0..20_000).map(|_| a.normal()).collect();
        assert!(xs.iter().zip((0..20_000).map(|_| b.normal())).all(|(x, y)| *x == y));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean}, var {var}");
    }
}
