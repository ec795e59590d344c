//! A safe, row-major face on the `gemm` crate for the small blocked products of the kernels.

use gemm::Parallelism;

/// A row-major matrix view: `rows × cols`, element (i, j) at `i * stride + j`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl<'a> Mat<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Self {
        assert!(cols <= stride || rows <= 1);
        assert!(
            rows == 0 || (rows - 1) * stride + cols <= data.len(),
            "matrix view out of bounds"
        );
        Mat {
            data,
            rows,
            cols,
            stride,
        }
    }
}

/// `dst[m × n] (row stride dst_stride) = (accumulate ? dst : 0) + a · bᵀ`, with `a` m × k and `b` n × k.
pub fn matmul_abt(dst: &mut [f32], dst_stride: usize, a: Mat, b: Mat, accumulate: bool) {
    assert_eq!(b.cols, a.cols, "inner dimensions differ");
    // bᵀ is `b` read with its row and column strides swapped.
    let (lhs, rhs) = ((a.data, a.stride, 1), (b.data, 1, b.stride));
    product(
        dst,
        dst_stride,
        (a.rows, b.rows, a.cols),
        lhs,
        rhs,
        accumulate,
    );
}

/// `dst[m × n] = (accumulate ? dst : 0) + a · b`, with `a` m × k and `b` k × n.
pub fn matmul_ab(dst: &mut [f32], dst_stride: usize, a: Mat, b: Mat, accumulate: bool) {
    assert_eq!(b.rows, a.cols, "inner dimensions differ");
    let (lhs, rhs) = ((a.data, a.stride, 1), (b.data, b.stride, 1));
    product(
        dst,
        dst_stride,
        (a.rows, b.cols, a.cols),
        lhs,
        rhs,
        accumulate,
    );
}

/// `dst[m × n] = (accumulate ? dst : 0) + aᵀ · b`, with `a` k × m and `b` k × n (the backward's weight gradients).
pub fn matmul_atb(dst: &mut [f32], dst_stride: usize, a: Mat, b: Mat, accumulate: bool) {
    assert_eq!(b.rows, a.rows, "inner dimensions differ");
    let (lhs, rhs) = ((a.data, 1, a.stride), (b.data, b.stride, 1));
    product(
        dst,
        dst_stride,
        (a.cols, b.cols, a.rows),
        lhs,
        rhs,
        accumulate,
    );
}

/// `dst = (accumulate ? dst : 0) + L · R` for `L` m × k and `R` k × n, each given as (data, row stride, column
/// stride) of a [`Mat`] that was bounds-checked for the same elements (possibly read transposed).
fn product(
    dst: &mut [f32],
    dst_stride: usize,
    (m, n, k): (usize, usize, usize),
    (l, l_rs, l_cs): (&[f32], usize, usize),
    (r, r_rs, r_cs): (&[f32], usize, usize),
    accumulate: bool,
) {
    assert!(
        m == 0 || (m - 1) * dst_stride + n <= dst.len(),
        "destination out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: both operands are views checked by `Mat::new` (a transposed read touches the same elements), dst
    // was checked above for m × n at dst_stride, and dst does not alias them (it is a distinct &mut).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            l.as_ptr(),
            l_cs as isize,
            l_rs as isize,
            r.as_ptr(),
            r_cs as isize,
            r_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_loops() {
        let a: Vec<f32> = (0..12).map(|x| x as f32 * 0.5 - 2.0).collect(); // 3 × 4
        let b: Vec<f32> = (0..8).map(|x| x as f32 * 0.25 + 1.0).collect(); // 2 × 4 (for a·bᵀ) or 4 × 2
        let mut c = vec![0.0f32; 6];
        matmul_abt(
            &mut c,
            2,
            Mat::new(&a, 3, 4, 4),
            Mat::new(&b, 2, 4, 4),
            false,
        );
        for i in 0..3 {
            for j in 0..2 {
                let want: f32 = (0..4).map(|k| a[i * 4 + k] * b[j * 4 + k]).sum();
                assert!((c[i * 2 + j] - want).abs() < 1e-5);
            }
        }
        let mut c2 = vec![1.0f32; 6];
        matmul_ab(
            &mut c2,
            2,
            Mat::new(&a, 3, 4, 4),
            Mat::new(&b, 4, 2, 2),
            true,
        );
        for i in 0..3 {
            for j in 0..2 {
                let want: f32 = 1.0 + (0..4).map(|k| a[i * 4 + k] * b[k * 2 + j]).sum::<f32>();
                assert!((c2[i * 2 + j] - want).abs() < 1e-5);
            }
        }
        // aᵀ·b with a 3 × 4 (so aᵀ is 4 × 3) and b 3 × 2 (the first 6 of b).
        let mut c3 = vec![0.0f32; 8];
        matmul_atb(
            &mut c3,
            2,
            Mat::new(&a, 3, 4, 4),
            Mat::new(&b, 3, 2, 2),
            false,
        );
        for i in 0..4 {
            for j in 0..2 {
                let want: f32 = (0..3).map(|k| a[k * 4 + i] * b[k * 2 + j]).sum();
                assert!((c3[i * 2 + j] - want).abs() < 1e-5);
            }
        }
    }
}
