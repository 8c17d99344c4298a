//! Splits by whole blocks of identical conditions, for an evaluation that cannot be flattered by
//! the rig's slow temperature drift.
//!
//! The conditions were run in blocks, in order. A cycle held out from the end of a block still
//! has a training neighbour of the same block a minute away, at the same temperatures, so a model
//! can recognise *when* it ran instead of *what* its condition is (the split `model train` uses,
//! `data::validation_rows`, has that flaw). Here a block is held out or trained on as a whole.
//!
//! One block in [`TEST_EVERY`] is the untouched test split: no choice of recipe may look at it
//! until the recipe is final. The other blocks take turns in the cross-validation folds, in time
//! order (block 0 to fold 0, block 1 to fold 1, …), so every fold spans the whole run and has
//! every condition.

use crate::rig::Cycle;

/// One block in this many is the untouched test split.
pub const TEST_EVERY: usize = 7;
/// Which block of each group of `TEST_EVERY` is the test block (not the first: the first block
/// of the file starts cold).
const TEST_OFFSET: usize = 3;

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
        let is_test = |block: usize| block % TEST_EVERY == TEST_OFFSET;
        // The rank of each non-test block among the non-test blocks picks its fold.
        let mut fold_of_block = vec![None; count];
        let mut rank = 0;
        for (block, fold) in fold_of_block.iter_mut().enumerate() {
            if !is_test(block) {
                *fold = Some(rank % folds);
                rank += 1;
            }
        }
        let mut split = BlockSplit { blocks: count, test: Vec::new(), folds: vec![Vec::new(); folds] };
        for (row, block) in of_row.iter().enumerate() {
            match fold_of_block[*block] {
                Some(fold) => split.folds[fold].push(row as u32),
                None => split.test.push(row as u32),
            }
        }
        split
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
        let labels = |rows: &[u32], pick: fn(&Cycle) -> String| rows.iter().map(|r| pick(&cycles[*r as usize])).collect::<BTreeSet<_>>();
        let pickers: [(&str, fn(&Cycle) -> String); 4] = [
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
        // About one block in TEST_EVERY, by rows too.
        let share = split.test.len() as f64 / cycles.len() as f64;
        assert!((0.08..0.22).contains(&share), "test share {share}");
    }
}
