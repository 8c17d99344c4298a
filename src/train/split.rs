//! Splits by whole blocks of identical conditions, for an evaluation that cannot be flattered by
//! the rig's slow temperature drift.
//!
//! The conditions were run in blocks, in order. A cycle held out from the end of a block still
//! has a training neighbour of the same block a minute away, at the same temperatures, so a model
//! can recognise *when* it ran instead of *what* its condition is (the split `model train` uses,
//! `data::validation_rows`, has that flaw). Here a block is held out or trained on as a whole.
//!
//! About one row in [`TEST_EVERY`], in whole blocks spread over the file, is the untouched test
//! split: no choice of recipe may look at it until the recipe is final. The other blocks go to
//! the cross-validation folds in time order, each to the fold with the fewest rows so far, so
//! every fold spans the whole run, has every condition and about the same number of rows.

use crate::model::HeldOut;
use crate::rig::Cycle;

/// About one row in this many, in whole blocks spread over the file, is the untouched test split.
pub const TEST_EVERY: usize = 7;

/// Cross-validation folds unless told otherwise; `model train` trains on all of them.
pub const FOLDS: usize = 5;

/// The block of every row: consecutive rows with identical (cooler, valve, pump, accumulator)
/// labels are one block. Blocks are numbered from 0 in row order.
pub fn blocks(cycles: &[Cycle]) -> Vec<usize> {
    let key = |c: &Cycle| (c.conditions.cooler, c.conditions.valve, c.conditions.pump, c.conditions.accumulator);
    let mut block = 0;
    cycles
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i > 0 && key(c) != key(&cycles[i - 1]) {
                block += 1;
            }
            block
        })
        .collect()
}

/// The untouched test rows and the cross-validation folds, as row indices.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSplit {
    pub blocks: usize,
    pub test: Vec<u32>,
    pub folds: Vec<Vec<u32>>,
}

impl BlockSplit {
    pub fn new(cycles: &[Cycle], folds: usize) -> Self {
        let folds = folds.max(2);
        let of_row = blocks(cycles);
        let count = of_row.last().map_or(0, |b| b + 1);
        let mut size = vec![0usize; count];
        for block in &of_row {
            size[*block] += 1;
        }
        // Each part keeps its share of the rows as the file goes on: a block joins the test split
        // when that brings the split nearer one row in TEST_EVERY of the rows so far, otherwise
        // the fold with the fewest rows. Blocks differ in length (1 to 168 rows: each cooler
        // level starts with a long one), so a plain rotation could stack the long ones in one part.
        let mut part_of_block = vec![None; count];
        let (mut seen, mut test_rows, mut fold_rows) = (0usize, 0usize, vec![0usize; folds]);
        for (block, part) in part_of_block.iter_mut().enumerate() {
            seen += size[block];
            let target = seen as f64 / TEST_EVERY as f64;
            if ((test_rows + size[block]) as f64 - target).abs() < (test_rows as f64 - target).abs() {
                test_rows += size[block];
            } else {
                let fold = (0..folds).min_by_key(|f| fold_rows[*f]).unwrap_or(0);
                fold_rows[fold] += size[block];
                *part = Some(fold);
            }
        }
        let mut split = BlockSplit { blocks: count, test: Vec::new(), folds: vec![Vec::new(); folds] };
        for (row, block) in of_row.iter().enumerate() {
            match part_of_block[*block] {
                Some(fold) => split.folds[fold].push(row as u32),
                None => split.test.push(row as u32),
            }
        }
        split
    }

    /// The rows a model was validated on, as its manifest records them.
    pub fn held_out_rows(cycles: &[Cycle], held_out: HeldOut) -> Vec<u32> {
        match held_out {
            HeldOut::Nothing => Vec::new(),
            HeldOut::UntouchedBlocks => BlockSplit::new(cycles, FOLDS).test,
            HeldOut::LastFifthOfEachBlock => super::data::validation_rows(cycles).iter().enumerate().filter(|(_, v)| **v).map(|(i, _)| i as u32).collect(),
        }
    }

    /// Every row of `cycles` but `held`, in order: what a model held out `held` trains on.
    pub fn rows_without(cycles: &[Cycle], held: &[u32]) -> Vec<u32> {
        let mut keep = vec![true; cycles.len()];
        for r in held {
            keep[*r as usize] = false;
        }
        (0..cycles.len() as u32).filter(|r| keep[*r as usize]).collect()
    }

    /// Every row of the cross-validation folds: what a final recipe trains on before it meets
    /// the test split.
    pub fn all_folds(&self) -> Vec<u32> {
        let mut rows: Vec<u32> = self.folds.concat();
        rows.sort_unstable();
        rows
    }

    /// The training rows of fold `k`: every other fold.
    pub fn training_for(&self, k: usize) -> Vec<u32> {
        let mut rows: Vec<u32> = self.folds.iter().enumerate().filter(|(i, _)| *i != k).flat_map(|(_, f)| f.iter().copied()).collect();
        rows.sort_unstable();
        rows
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::rig;

    /// The whole labelled data set, beside the repository as CI has it.
    fn cycles() -> Vec<Cycle> {
        rig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/uci-hydraulic")).expect("the UCI data beside the repository")
    }

    #[test]
    fn no_block_is_split_between_test_folds_or_training() {
        let cycles = cycles();
        let of_row = blocks(&cycles);
        let split = BlockSplit::new(&cycles, 5);
        let blocks_of = |rows: &[u32]| rows.iter().map(|r| of_row[*r as usize]).collect::<BTreeSet<_>>();
        let mut seen = blocks_of(&split.test);
        for fold in &split.folds {
            let these = blocks_of(fold);
            assert!(seen.is_disjoint(&these), "a block in two parts");
            seen.extend(these);
        }
        assert_eq!(seen.len(), split.blocks, "every block is somewhere");
        assert_eq!(split.test.len() + split.folds.iter().map(Vec::len).sum::<usize>(), cycles.len(), "every row once");
        for k in 0..5 {
            let training = split.training_for(k);
            assert!(blocks_of(&training).is_disjoint(&blocks_of(&split.folds[k])), "fold {k} trains on none of its own blocks");
            assert!(blocks_of(&training).is_disjoint(&blocks_of(&split.test)), "no training on the test split");
        }
    }

    #[test]
    fn the_test_split_and_every_fold_have_every_condition_of_every_component() {
        let cycles = cycles();
        let split = BlockSplit::new(&cycles, 5);
        type Label = fn(&Cycle) -> String;
        let labels = |rows: &[u32], pick: Label| rows.iter().map(|r| pick(&cycles[*r as usize])).collect::<BTreeSet<_>>();
        let pickers: [(&str, Label); 4] = [
            ("cooler", |c| c.conditions.cooler.to_string()),
            ("valve", |c| c.conditions.valve.to_string()),
            ("pump", |c| c.conditions.pump.to_string()),
            ("accumulator", |c| c.conditions.accumulator.to_string()),
        ];
        let all: Vec<u32> = (0..cycles.len() as u32).collect();
        for (component, pick) in pickers {
            let every = labels(&all, pick);
            assert_eq!(labels(&split.test, pick), every, "{component}: the test split");
            for (k, fold) in split.folds.iter().enumerate() {
                assert_eq!(labels(fold, pick), every, "{component}: fold {k}");
            }
        }
        // About one row in TEST_EVERY is test, and the folds are about equal: no two differ by more
        // than the longest block.
        let share = split.test.len() as f64 / cycles.len() as f64;
        assert!((share - 1.0 / TEST_EVERY as f64).abs() < 0.01, "test share {share}");
        let longest = {
            let of_row = blocks(&cycles);
            (0..split.blocks).map(|b| of_row.iter().filter(|x| **x == b).count()).max().unwrap()
        };
        let sizes: Vec<usize> = split.folds.iter().map(Vec::len).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= longest, "fold sizes {sizes:?}, longest block {longest}");
    }
}
