//! The networks' weights as plain named `f32` arrays, read from and written to safetensors, so
//! scoring needs no tensor library: training turns its tensors into these before it saves.

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};

use super::ModelError;

/// One weight: its shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Weights by name; a `BTreeMap` so every walk over them (digest, file) has one order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights(BTreeMap<String, Weight>);

impl Weights {
    /// Adds a weight; its values must fill its shape.
    pub fn insert(&mut self, name: impl Into<String>, weight: Weight) -> Result<(), ModelError> {
        let name = name.into();
        if weight.shape.iter().product::<usize>() != weight.values.len() {
            return Err(ModelError::Artifact(format!("weight {name}: {} values do not fill shape {:?}", weight.values.len(), weight.shape)));
        }
        self.0.insert(name, weight);
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Weight)> {
        self.0.iter()
    }

    /// The values of `name`, checked against the expected shape so a wrong artifact fails at
    /// load time, not while scoring.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32], ModelError> {
        let w = self.0.get(name).ok_or_else(|| ModelError::Artifact(format!("tensor {name} is missing")))?;
        if w.shape != shape {
            return Err(ModelError::Artifact(format!("tensor {name} has shape {:?}, expected {shape:?}", w.shape)));
        }
        Ok(&w.values)
    }

    /// SHA-256 over every weight's name, shape and values in name order: equal digests mean
    /// bit-identical weights.
    pub fn sha256(&self) -> String {
        let mut h = Sha256::new();
        for (name, w) in &self.0 {
            h.update(format!("{name}{:?}", w.shape).as_bytes());
            for v in &w.values {
                h.update(v.to_le_bytes());
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a safetensors file's bytes; every tensor must be `f32`.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, String> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let mut weights = Weights::default();
        for (name, view) in file.iter() {
            if view.dtype() != Dtype::F32 {
                return Err(format!("tensor {name} is {:?}, expected F32", view.dtype()));
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            weights.insert(name, Weight { shape: view.shape().to_vec(), values }).map_err(|e| e.to_string())?;
        }
        Ok(weights)
    }

    /// The safetensors bytes of these weights (no metadata, tensors in name order).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, String> {
        let bytes: Vec<(&str, &[usize], Vec<u8>)> =
            self.0.iter().map(|(name, w)| (name.as_str(), w.shape.as_slice(), w.values.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
        let views = bytes
            .iter()
            .map(|(name, shape, data)| Ok((*name, TensorView::new(Dtype::F32, shape.to_vec(), data)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| e.to_string())?;
        safetensors::serialize(views, None).map_err(|e| e.to_string())
    }
}

impl FromIterator<(String, Weight)> for Weights {
    fn from_iter<I: IntoIterator<Item = (String, Weight)>>(items: I) -> Self {
        Weights(items.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{Weight, Weights};

    #[test]
    fn weights_survive_a_safetensors_round_trip_bit_for_bit() {
        let mut weights = Weights::default();
        weights.insert("b.w", Weight { shape: vec![2, 3], values: vec![1.0, -0.0, f32::MIN_POSITIVE, 3.5e-9, -7.25, f32::MAX] }).unwrap();
        weights.insert("a.b", Weight { shape: vec![1], values: vec![0.1] }).unwrap();
        let back = Weights::from_safetensors(&weights.to_safetensors().unwrap()).unwrap();
        assert_eq!(back.sha256(), weights.sha256());
        assert_eq!(back.get("b.w", &[2, 3]).unwrap()[1].to_bits(), (-0.0f32).to_bits());
        assert!(back.get("b.w", &[3, 2]).is_err(), "a wrong shape is refused");
        assert!(weights.clone().insert("c", Weight { shape: vec![2], values: vec![1.0] }).is_err(), "values must fill the shape");
    }
}
