"""The CUDA C of the fused kernels (minigrad/fused/kernels.py and gemm.py launch them).

Each source is self-contained (no #include) and compiled once per dtype with `scalar_t` defined as
float or double (kernels.source_for). BLOCK (threads per block), TILE (the side of the GEMM's
square of threads), GEMM_TILE and K_STEP come from the Python constants below, so the launches
and the kernels cannot disagree.
"""

from __future__ import annotations

BLOCK = 256  # threads per block; the block reductions need a power of two
TILE = 16  # the GEMM's threads as a TILE x TILE square
GEMM_TILE = 2 * TILE  # the GEMM's tile of c: each thread computes 2 x 2 of its elements
K_STEP = 16  # the GEMM reads a and b in steps of K_STEP along k
MAX_BLOCKS = 4096  # grid-stride loops cover the rest; also the size of the block-sum workspace
MAX_SGD_TENSORS = 16  # parameters per sgd_update_many launch (their addresses go by value)
assert BLOCK == TILE * TILE and BLOCK & (BLOCK - 1) == 0

PRELUDE = rf"""
// scalar_t is float or double: each source is compiled once per dtype.
#define BLOCK {BLOCK}
#define TILE {TILE}
#define GEMM_TILE {GEMM_TILE}
#define K_STEP {K_STEP}
#define MAX_SGD_TENSORS {MAX_SGD_TENSORS}
__device__ inline float real_exp(float x) {{ return expf(x); }}
__device__ inline double real_exp(double x) {{ return exp(x); }}
__device__ inline float real_log(float x) {{ return logf(x); }}
__device__ inline double real_log(double x) {{ return log(x); }}
#define REAL_NAN ((scalar_t)__int_as_float(0x7fc00000))
#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)
// The sum of `value` over the block's threads, by a tree in shared memory (deterministic).
__device__ inline scalar_t block_sum(scalar_t* partial, scalar_t value) {{
    partial[threadIdx.x] = value;
    __syncthreads();
    for (int half = BLOCK / 2; half > 0; half /= 2) {{
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }}
    scalar_t total = partial[0];
    __syncthreads();  // partial may be reused at once
    return total;
}}
"""

RELU_BACKWARD = r"""
// out = 0 where the ReLU's output z is <= 0, else grad (a NaN z passes grad, as on the CPU).
extern "C" __global__ void relu_backward(const scalar_t* grad, const scalar_t* z, scalar_t* out,
                                         long long n) {
    GRID_STRIDE_LOOP(i, n) { out[i] = z[i] <= 0 ? (scalar_t)0 : grad[i]; }
}
"""

RELU_BACKWARD_BIAS_GRAD = r"""
// ReLU's backward and the next-earlier Linear's bias gradient in one pass, for (rows, features):
//   out = 0 where z <= 0 else grad;  bias_grad[j] = sum over rows of out[:, j]
// One thread per column walks down its rows (neighbouring threads read neighbouring columns).
extern "C" __global__ void relu_backward_bias_grad(const scalar_t* grad, const scalar_t* z,
                                                   scalar_t* out, scalar_t* bias_grad,
                                                   long long rows, long long features) {
    GRID_STRIDE_LOOP(j, features) {
        scalar_t sum = 0;
        for (long long r = 0; r < rows; ++r) {
            long long i = r * features + j;
            scalar_t v = z[i] <= 0 ? (scalar_t)0 : grad[i];
            out[i] = v;
            sum += v;
        }
        bias_grad[j] = sum;
    }
}
"""

BIAS_RELU_FORWARD = r"""
// out = max(x + bias, 0) (NaN stays NaN, as numpy.maximum), bias broadcast along the last dim
// (features); out may be x.
extern "C" __global__ void bias_relu_forward(const scalar_t* x, const scalar_t* bias, scalar_t* out,
                                             long long n, long long features) {
    GRID_STRIDE_LOOP(i, n) {
        scalar_t v = x[i] + bias[i % features];
        out[i] = v <= 0 ? (scalar_t)0 : v;
    }
}
"""

CROSS_ENTROPY_FORWARD = r"""
// loss = scale * sum_r (log(sum_c exp(x_rc - m_r)) - (x_rt - m_r)), m_r = max_c x_rc, t = target[r]
// out gets each row's softmax (kept for backward) or, with as_gradient, the gradient of the loss
// (softmax - onehot(t)) * scale (the fused forward and backward of a captured step).
// One thread per row (a row of 10 classes is too short to share). Each block adds its rows'
// losses by a tree and stores the sum in block_sums; the last block to finish (counted in
// *finished, which it sets back to 0) adds those sums in block order: deterministic for a grid.
// A target outside [0, classes) makes the loss and its row of the gradient NaN.
extern "C" __global__ void cross_entropy_forward(const scalar_t* logits, const long long* target,
                                                 scalar_t* out, scalar_t* loss,
                                                 scalar_t* block_sums,
                                                 unsigned long long* finished, long long rows,
                                                 int classes, scalar_t scale, int as_gradient) {
    __shared__ scalar_t partial[BLOCK];
    __shared__ int is_last;
    scalar_t total = 0;
    GRID_STRIDE_LOOP(r, rows) {
        const scalar_t* x = logits + r * classes;
        scalar_t* p = out + r * classes;
        scalar_t top = x[0];
        for (int c = 1; c < classes; ++c) top = x[c] > top ? x[c] : top;
        scalar_t sum = 0;
        for (int c = 0; c < classes; ++c) {
            p[c] = real_exp(x[c] - top);
            sum += p[c];
        }
        long long t = target[r];
        bool valid = t >= 0 && t < classes;
        for (int c = 0; c < classes; ++c) {
            p[c] /= sum;
            if (as_gradient) p[c] = valid ? (p[c] - (c == t ? 1 : 0)) * scale : REAL_NAN;
        }
        total += valid ? real_log(sum) - (x[t] - top) : REAL_NAN;
    }
    total = block_sum(partial, total);
    if (threadIdx.x == 0) {
        block_sums[blockIdx.x] = total;
        __threadfence();  // the sum is visible to every block before the count says it is there
        is_last = atomicAdd(finished, 1ULL) == gridDim.x - 1;
        __threadfence();  // and the other blocks' sums are read after their count
    }
    __syncthreads();
    if (is_last) {
        scalar_t sum = 0;
        for (unsigned b = threadIdx.x; b < gridDim.x; b += BLOCK)
            sum += ((volatile scalar_t*)block_sums)[b];
        sum = block_sum(partial, sum);
        if (threadIdx.x == 0) {
            loss[0] = sum * scale;
            *finished = 0;  // ready for the next launch (and for a graph's next replay)
        }
    }
}
"""

CROSS_ENTROPY_BACKWARD = r"""
// grad_logits = (probs - onehot(target)) * grad_loss * scale, one thread per element; grad_loss is
// the 0-d gradient of the loss, read on the device (no copy to the host).
extern "C" __global__ void cross_entropy_backward(const scalar_t* probs, const long long* target,
                                                  const scalar_t* grad_loss,
                                                  scalar_t* grad_logits, long long n, int classes,
                                                  scalar_t scale) {
    scalar_t g = grad_loss[0] * scale;
    GRID_STRIDE_LOOP(i, n) {
        long long t = target[i / classes];
        scalar_t hit = (i % classes) == t ? (scalar_t)1 : (scalar_t)0;
        grad_logits[i] = (t >= 0 && t < classes) ? (probs[i] - hit) * g : REAL_NAN;
    }
}
"""

_SGD_STEP = r"""
#ifndef SGD_ELEMENT  // (both SGD kernels use it; the tests' emulator compiles them together)
#define SGD_ELEMENT
// torch.optim.SGD's update of one element:
//   d = g + weight_decay * p
//   buf = d (first step)  or  momentum * buf + (1 - dampening) * d
//   d = d + momentum * buf (nesterov)  or  buf
//   p -= lr * d
// With momentum 0 there is no buffer (buf is not touched).
__device__ inline void sgd_element(scalar_t* param, const scalar_t* grad, scalar_t* buf,
                                   long long i, scalar_t lr, scalar_t momentum,
                                   scalar_t dampening, scalar_t weight_decay, int nesterov,
                                   int first_step) {
    scalar_t d = grad[i];
    if (weight_decay != 0) d += weight_decay * param[i];
    if (momentum != 0) {
        scalar_t b = first_step ? d : momentum * buf[i] + (1 - dampening) * d;
        buf[i] = b;
        d = nesterov ? d + momentum * b : b;
    }
    param[i] -= lr * d;
}
#endif
"""

SGD_UPDATE = _SGD_STEP + r"""
// One parameter, in place, in one pass.
extern "C" __global__ void sgd_update(scalar_t* param, const scalar_t* grad, scalar_t* buf,
                                      long long n, scalar_t lr, scalar_t momentum,
                                      scalar_t dampening, scalar_t weight_decay, int nesterov,
                                      int first_step) {
    GRID_STRIDE_LOOP(i, n) {
        sgd_element(param, grad, buf, i, lr, momentum, dampening, weight_decay, nesterov,
                    first_step);
    }
}
"""

SGD_UPDATE_MANY = _SGD_STEP + r"""
// Up to MAX_SGD_TENSORS parameters in one launch. Their addresses travel in the launch's own
// arguments (this struct, passed by value), so new gradient arrays at every step cost no upload:
// for tensors t = 0..count-1, address[3t], address[3t + 1] and address[3t + 2] are param t, its
// gradient and its momentum buffer, and starts[t] is where it begins in the concatenation of
// all of them (starts[count] = total). lr is read on the device, so a captured graph follows a
// learning-rate schedule.
struct SgdTensors {
    long long address[3 * MAX_SGD_TENSORS];
    long long starts[MAX_SGD_TENSORS + 1];
};
extern "C" __global__ void sgd_update_many(const SgdTensors tensors, int count, long long total,
                                           const scalar_t* lr, scalar_t momentum,
                                           scalar_t dampening, scalar_t weight_decay,
                                           int nesterov, int first_step) {
    scalar_t rate = lr[0];
    GRID_STRIDE_LOOP(i, total) {
        int t = 0;
        while (t + 1 < count && i >= tensors.starts[t + 1]) ++t;
        sgd_element((scalar_t*)tensors.address[3 * t],
                    (const scalar_t*)tensors.address[3 * t + 1],
                    (scalar_t*)tensors.address[3 * t + 2], i - tensors.starts[t], rate, momentum,
                    dampening, weight_decay, nesterov, first_step);
    }
}
"""

GATHER_BATCH = r"""
// A batch of a data set held on the GPU, in one launch: for r < rows, with s = order[start + r],
//   x[r, :] = inputs[s, :]  and  y[r] = targets[s]
// An index s outside [0, count) gives a row of NaN and a target of -1 (which the loss makes NaN).
extern "C" __global__ void gather_batch(const scalar_t* inputs, const long long* targets,
                                        const long long* order, scalar_t* x, long long* y,
                                        long long start, long long rows, long long features,
                                        long long count) {
    GRID_STRIDE_LOOP(i, rows * features) {
        long long s = order[start + i / features];
        x[i] = (s >= 0 && s < count) ? inputs[s * features + i % features] : REAL_NAN;
    }
    GRID_STRIDE_LOOP(r, rows) {
        long long s = order[start + r];
        y[r] = (s >= 0 && s < count) ? targets[s] : -1;
    }
}
"""

GEMM = r"""
// c = a @ b for small matrices, then an epilogue, with no cuBLAS call (so a CUDA graph can
// capture it). a(i, k) = a[i * a_row + k * a_col], b(k, j) = b[k * b_row + j * b_col]: the
// strides give a or b transposed for free. c is (m, n), C-contiguous. Epilogue bits:
//   1  c += bias[j]                 (a Linear's bias)
//   2  c = max(c, 0)                (then ReLU)
//   4  c = 0 where mask[i, j] <= 0  (ReLU's backward: mask is the ReLU's output)
//   8  row_sum[i] = sum_k a(i, k)   (with a = grad^T: a Linear's bias gradient)
// One block of TILE x TILE threads per GEMM_TILE x GEMM_TILE tile of c and per slice of k (block
// slice * tiles + tile). Thread (ty, tx) computes the 2 x 2 elements at rows ty and ty + TILE
// and columns tx and tx + TILE of the tile (each number read from shared memory serves two
// products), adding in k order. a and b are read K_STEP columns (rows) at a time, neighbouring
// threads on neighbouring addresses along whichever of i, k (k, j) has stride 1.
// Split-K: a long k and few tiles (batch 64 against 784 inputs) would leave most of the GPU
// idle, so `slices` blocks share each tile's k. Each writes its share to `partial` (slices x
// (m*n products, then m row sums)); the tile's last block to arrive (counted in arrived[tile],
// which it sets back to 0) adds the shares in slice order, so the result is the same at every
// run, and applies the epilogue. With slices = 1 the block writes c at once.
extern "C" __global__ void gemm(const scalar_t* a, long long a_row, long long a_col,
                                const scalar_t* b, long long b_row, long long b_col, scalar_t* c,
                                long long m, long long n, long long k, const scalar_t* bias,
                                const scalar_t* mask, scalar_t* row_sum, int epilogue,
                                int slices, long long k_per_slice, scalar_t* partial,
                                unsigned long long* arrived) {
    __shared__ scalar_t a_tile[GEMM_TILE][K_STEP + 1];  // [row][k]; +1: no bank conflicts
    __shared__ scalar_t b_tile[K_STEP][GEMM_TILE + 1];  // [k][column]
    __shared__ int is_last;
    int ty = threadIdx.x / TILE, tx = threadIdx.x % TILE;
    long long tiles_n = n > 0 ? (n + GEMM_TILE - 1) / GEMM_TILE : 1;
    long long tiles = ((m + GEMM_TILE - 1) / GEMM_TILE) * tiles_n;
    long long tile = blockIdx.x % tiles, slice = blockIdx.x / tiles;
    long long row0 = (tile / tiles_n) * GEMM_TILE, col0 = (tile % tiles_n) * GEMM_TILE;
    long long k_begin = slice * k_per_slice;
    long long k_end = k_begin + k_per_slice < k ? k_begin + k_per_slice : k;
    bool sums = (epilogue & 8) && col0 == 0 && tx == 0;  // one column of blocks adds a's rows
    scalar_t acc[2][2] = {{0, 0}, {0, 0}}, sum[2] = {0, 0};
    for (long long k0 = k_begin; k0 < k_end; k0 += K_STEP) {
        for (int e = threadIdx.x; e < GEMM_TILE * K_STEP; e += BLOCK) {  // 2 numbers a thread
            int r, kk;  // neighbouring threads: neighbouring r, or neighbouring kk
            if (a_row == 1) { r = e % GEMM_TILE; kk = e / GEMM_TILE; }
            else { kk = e % K_STEP; r = e / K_STEP; }
            long long i = row0 + r, ka = k0 + kk;
            a_tile[r][kk] = (i < m && ka < k_end) ? a[i * a_row + ka * a_col] : (scalar_t)0;
            int col, kb;
            if (b_row == 1) { kb = e % K_STEP; col = e / K_STEP; }
            else { col = e % GEMM_TILE; kb = e / GEMM_TILE; }
            long long j = col0 + col, kj = k0 + kb;
            b_tile[kb][col] = (kj < k_end && j < n) ? b[kj * b_row + j * b_col] : (scalar_t)0;
        }
        __syncthreads();
        for (int t = 0; t < K_STEP; ++t) {
            scalar_t a0 = a_tile[ty][t], a1 = a_tile[ty + TILE][t];
            scalar_t b0 = b_tile[t][tx], b1 = b_tile[t][tx + TILE];
            acc[0][0] += a0 * b0;
            acc[0][1] += a0 * b1;
            acc[1][0] += a1 * b0;
            acc[1][1] += a1 * b1;
            if (sums) { sum[0] += a0; sum[1] += a1; }
        }
        __syncthreads();
    }
    if (slices > 1) {  // leave this slice's share; the tile's last block adds them all
        scalar_t* share = partial + slice * (m * n + m);
        for (int u = 0; u < 2; ++u) {
            long long row = row0 + ty + u * TILE;
            if (row >= m) continue;
            for (int v = 0; v < 2; ++v) {
                long long col = col0 + tx + v * TILE;
                if (col < n) share[row * n + col] = acc[u][v];
            }
            if (sums) share[m * n + row] = sum[u];
        }
        __threadfence();  // the share is visible to every block before the count says so
        __syncthreads();
        if (threadIdx.x == 0) {
            is_last = atomicAdd(arrived + tile, 1ULL) == slices - 1ULL;
            __threadfence();  // and the other blocks' shares are read after their count
        }
        __syncthreads();
        if (!is_last) return;
        for (int u = 0; u < 2; ++u) {
            long long row = row0 + ty + u * TILE;
            sum[u] = 0;
            for (int v = 0; v < 2; ++v) {
                long long col = col0 + tx + v * TILE;
                acc[u][v] = 0;
                for (long long s = 0; s < slices && row < m && col < n; ++s)  // in slice order
                    acc[u][v] += ((volatile const scalar_t*)partial)[s * (m * n + m) + row * n
                                                                     + col];
            }
            for (long long s = 0; s < slices && sums && row < m; ++s)
                sum[u] += ((volatile const scalar_t*)partial)[s * (m * n + m) + m * n + row];
        }
        if (threadIdx.x == 0) arrived[tile] = 0;  // ready for the next launch or replay
    }
    for (int u = 0; u < 2; ++u) {
        long long row = row0 + ty + u * TILE;
        if (row >= m) continue;
        if (sums) row_sum[row] = sum[u];
        for (int v = 0; v < 2; ++v) {
            long long col = col0 + tx + v * TILE;
            if (col >= n) continue;
            scalar_t value = acc[u][v];
            if (epilogue & 1) value += bias[col];
            if (epilogue & 2) value = value <= 0 ? (scalar_t)0 : value;
            if (epilogue & 4) value = mask[row * n + col] <= 0 ? (scalar_t)0 : value;
            c[row * n + col] = value;
        }
    }
}
"""

SOURCES = {
    "relu_backward": RELU_BACKWARD,
    "relu_backward_bias_grad": RELU_BACKWARD_BIAS_GRAD,
    "bias_relu_forward": BIAS_RELU_FORWARD,
    "cross_entropy_forward": CROSS_ENTROPY_FORWARD,
    "cross_entropy_backward": CROSS_ENTROPY_BACKWARD,
    "sgd_update": SGD_UPDATE,
    "sgd_update_many": SGD_UPDATE_MANY,
    "gather_batch": GATHER_BATCH,
    "gemm": GEMM,
}
