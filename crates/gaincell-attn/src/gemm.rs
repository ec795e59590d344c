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
    let (m, n, k) = (a.rows, b.rows, a.cols);
    assert_eq!(b.cols, k, "inner dimensions differ");
    assert!(
        m == 0 || (m - 1) * dst_stride + n <= dst.len(),
        "destination out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: every view was bounds-checked above for the strides passed here, and dst does not alias a or b
    // (it is a distinct &mut).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            1,
            a.stride as isize,
            b.data.as_ptr(),
            b.stride as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// `dst[m × n] = (accumulate ? dst : 0) + a · b`, with `a` m × k and `b` k × n.
pub fn matmul_ab(dst: &mut [f32], dst_stride: usize, a: Mat, b: Mat, accumulate: bool) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert!(
        m == 0 || (m - 1) * dst_stride + n <= dst.len(),
        "destination out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: as in `matmul_abt`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            1,
            a.stride as isize,
            b.data.as_ptr(),
            1,
            b.stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// `dst[m × n] = (accumulate ? dst : 0) + aᵀ · b`, with `a` k × m and `b` k × n (the backward's weight gradients).
pub fn matmul_atb(dst: &mut [f32], dst_stride: usize, a: Mat, b: Mat, accumulate: bool) {
    let (m, n, k) = (a.cols, b.cols, a.rows);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert!(
        m == 0 || (m - 1) * dst_stride + n <= dst.len(),
        "destination out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: as in `matmul_abt`; aᵀ is `a` read with its row and column strides swapped.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.stride as isize,
            1,
            b.data.as_ptr(),
            1,
            b.stride as isize,
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
