//! How many arrays, sub-tiles, cells, MACs, readouts and additions one head needs per token.

use gaincell_chip::ChipConfig;
use serde::Serialize;

/// Per head. A head owns a key array and a value array of `head_dim` rows × `window` columns, each cut into
/// sub-tiles of `tile_rows` tokens; the value array's sub-tiles are read out separately and summed by an adder tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub head_dim: usize,
    pub window: usize,
    /// Tokens per sub-tile (the whole window when tiling is off).
    pub tile_rows: usize,
    /// Sub-tiles per array: window / tile_rows.
    pub sub_tiles: usize,
    /// Arrays per head: the key array and the value array.
    pub arrays: usize,
    /// Gain cells per head: 2 · head_dim · window.
    pub cells: usize,
    /// Multiply-accumulates per token in each array: head_dim · window.
    pub macs_per_array: usize,
    /// Score charge-to-pulse conversions per token: one per key column.
    pub score_conversions: usize,
    /// Signed readouts per token: one per output dim per sub-tile.
    pub readouts: usize,
    /// Values written by DACs per token: one k and one v column.
    pub written_values: usize,
    /// Tokens between two writes of a column under the chip's refresh policy (none: never rewritten).
    pub refresh_period_tokens: Option<usize>,
    /// Columns rewritten per token by the refresh, at steady state: each column is rewritten at ages N, 2N, …
    /// below the window, so ⌊(window − 1) / N⌋ of them are due at every token.
    pub refresh_columns: usize,
    /// Values the refresh writes per token: 2 · head_dim per rewritten column.
    pub refresh_values: usize,
    /// Levels of the adder tree over sub-tiles: ⌈log₂ sub_tiles⌉.
    pub adder_depth: u32,
    /// Additions per token in the tree: (sub_tiles − 1) · head_dim.
    pub additions: usize,
}

impl Counts {
    /// Counts for a validated gain-cell chip.
    pub fn of(chip: &ChipConfig) -> Self {
        let g = &chip.geometry;
        let (d, w) = (g.head_dim, g.window);
        let tile_rows = if g.tiling { g.tile_rows } else { w };
        let sub_tiles = w / tile_rows;
        let refresh_period_tokens = chip.refresh_period();
        let refresh_columns = refresh_period_tokens.map_or(0, |n| (w - 1) / n);
        Counts {
            refresh_period_tokens,
            refresh_columns,
            refresh_values: 2 * d * refresh_columns,
            head_dim: d,
            window: w,
            tile_rows,
            sub_tiles,
            arrays: 2,
            cells: 2 * d * w,
            macs_per_array: d * w,
            score_conversions: w,
            readouts: sub_tiles * d,
            written_values: 2 * d,
            adder_depth: sub_tiles.next_power_of_two().trailing_zeros(),
            additions: (sub_tiles - 1) * d,
        }
    }
}
