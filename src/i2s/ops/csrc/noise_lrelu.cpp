// Fused elementwise passes of a folded StyleGAN2 synthesis layer on the CPU (one sample,
// float32, channels-last: the activation is a row-major [P = H*W, C] matrix).
//
// Forward, in place:  a = clamp(lrelu(y + n * noise_gain, slope), -clamp, clamp)
// Backward, one pass over dL/da and a:
//   g_t      = dL/da * lrelu'(t), 0 where |a| >= clamp        (t = y + n * noise_gain)
//   sums[0]  = sum_hw g_t * (t - n * noise_gain)               per channel (= sum g_t * y)
//   sums[1]  = sum_hw g_t                                      per channel
// optionally (for a whole folded block, see i2s/folded_block.py):
//   input_dot:   sums[2] = sum_hw dL/da * a   (the next layer's style gradient, times s)
//   a ToRGB layer rgb = conv1x1(a, rgb_weight [K, C]) with output gradient rgb_grad [K, H, W]:
//                dL/da += rgb_weight^T rgb_grad per pixel, and the last K rows of sums are
//                sum_hw rgb_grad[k] * a (its weight gradient).
// t is recovered from a (leaky ReLU with slope > 0 is invertible), so y need not be kept.
// Up-sampling layers (fir_noise_lrelu, noise_lrelu_fir_backward) also apply their separable
// 4x4 FIR in the forward pass and its adjoint in the backward pass.
// See i2s/folded_layer.py for the maths; i2s/fused_cpu.py builds this file on first use.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

void check_activation(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.dim() == 4 &&
                  t.size(0) == 1 && t.is_contiguous(at::MemoryFormat::ChannelsLast),
              name, " must be a float32 CPU tensor [1, C, H, W] in channels-last layout");
}

const float* noise_data(const c10::optional<torch::Tensor>& noise, const torch::Tensor& a) {
  if (!noise.has_value()) return nullptr;
  const auto& n = *noise;
  TORCH_CHECK(n.device().is_cpu() && n.scalar_type() == torch::kFloat32 && n.is_contiguous() &&
                  n.numel() == a.size(2) * a.size(3),
              "noise must be a contiguous float32 CPU tensor with H*W elements");
  return n.data_ptr<float>();
}

// Large outputs are written with streaming stores where the CPU has AVX-512: they bypass the
// cache, so the line is not first read from memory (a third of the traffic of a pass that
// reads one tensor and writes another). Rows must start on 64-byte boundaries (C % 16 == 0).
bool use_streaming_stores(const torch::Tensor& out) {
#if defined(__AVX512F__)
  return out.size(1) % 16 == 0 && out.nbytes() >= (size_t{32} << 20) &&
         reinterpret_cast<uintptr_t>(out.data_ptr()) % 64 == 0;
#else
  (void)out;
  return false;
#endif
}

void store_fence(bool stream) {
#if defined(__AVX512F__)
  if (stream) _mm_sfence();
#else
  (void)stream;
#endif
}

// dst[0, n) = src[0, n), with streaming stores when `stream` (dst 64-byte aligned, n % 16 == 0).
void stream_copy(float* dst, const float* src, int64_t n, bool stream) {
#if defined(__AVX512F__)
  if (stream) {
    for (int64_t i = 0; i < n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
    return;
  }
#endif
  (void)stream;
  std::copy(src, src + n, dst);
}

// o[i] = h0 w[i + 3C] + h1 w[i + 2C] + h2 w[i + C] + h3 w[i] for i < n (a row of 4-tap
// horizontal filtering; w has the zero columns around the row).
void horizontal_taps(const float* w, float* o, int64_t n, int64_t C, const float* h,
                     bool stream) {
  const float h0 = h[0], h1 = h[1], h2 = h[2], h3 = h[3];
#if defined(__AVX512F__)
  if (stream) {
    const __m512 k0 = _mm512_set1_ps(h0), k1 = _mm512_set1_ps(h1), k2 = _mm512_set1_ps(h2),
                 k3 = _mm512_set1_ps(h3);
    for (int64_t i = 0; i < n; i += 16) {
      __m512 acc = _mm512_mul_ps(k3, _mm512_loadu_ps(w + i));
      acc = _mm512_fmadd_ps(k2, _mm512_loadu_ps(w + i + C), acc);
      acc = _mm512_fmadd_ps(k1, _mm512_loadu_ps(w + i + 2 * C), acc);
      acc = _mm512_fmadd_ps(k0, _mm512_loadu_ps(w + i + 3 * C), acc);
      _mm512_stream_ps(o + i, acc);
    }
    return;
  }
#endif
#pragma omp simd
  for (int64_t i = 0; i < n; ++i)
    o[i] = std::fma(h0, w[i + 3 * C], std::fma(h1, w[i + 2 * C], std::fma(h2, w[i + C],
                                                                            h3 * w[i])));
}

}  // namespace

void noise_lrelu_(torch::Tensor y, c10::optional<torch::Tensor> noise, double noise_gain,
                  double slope, double clamp) {
  check_activation(y, "y");
  const int64_t channels = y.size(1);
  const int64_t pixels = y.numel() / channels;
  float* const data = y.data_ptr<float>();
  const float* const nse = noise_data(noise, y);
  const float ng = static_cast<float>(noise_gain), sl = static_cast<float>(slope);
  const float cl = clamp > 0 ? static_cast<float>(clamp) : INFINITY;
  at::parallel_for(0, pixels, 1024, [=](int64_t begin, int64_t end) {
    const int64_t C = channels;
    for (int64_t p = begin; p < end; ++p) {
      const float nv = nse ? nse[p] * ng : 0.0f;
      float* __restrict row = data + p * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float v = row[c] + nv;
        row[c] = std::clamp(v > 0.0f ? v : v * sl, -cl, cl);
      }
    }
  });
}

namespace {

// Rows [u0, u1) of fir_noise_lrelu. V: one vertically filtered row, S * C floats, then (when
// streaming) one output row.
template <int kC>
void fir_rows(int64_t u0, int64_t u1, int64_t c_run, int64_t S, const float* T, const float* kv,
              const float* kh, const float* bias, const float* nse, float ng, float sl,
              float cl, float* out, float* V, bool stream) {
  const int64_t C = kC > 0 ? kC : c_run;
  const int64_t R = S - 2, row = S * C;
  for (int64_t u = u0; u < u1; ++u) {
    // vertical taps: rows u-1 .. u+2 of T (row -1 is the zero padding)
    const float* __restrict t1 = T + u * row;
    const float* __restrict t2 = t1 + row;
    const float* __restrict t3 = t2 + row;
    float* __restrict vr = V;
    if (u > 0) {
      const float* __restrict t0 = t1 - row;
#pragma omp simd
      for (int64_t i = 0; i < row; ++i)
        vr[i] = std::fma(kv[3], t3[i], std::fma(kv[2], t2[i], std::fma(kv[1], t1[i],
                                                                        kv[0] * t0[i])));
    } else {
#pragma omp simd
      for (int64_t i = 0; i < row; ++i)
        vr[i] = std::fma(kv[3], t3[i], std::fma(kv[2], t2[i], kv[1] * t1[i]));
    }
    // horizontal taps: columns v-1 .. v+2 (column -1 is the zero padding), then the epilogue
    for (int64_t v = 0; v < R; ++v) {
      const float* __restrict c1 = V + v * C;
      const float* __restrict c2 = c1 + C;
      const float* __restrict c3 = c2 + C;
      const float* __restrict c0 = v > 0 ? c1 - C : c1;
      const float k0 = v > 0 ? kh[0] : 0.0f;
      const int64_t p = u * R + v;
      const float nv = nse ? nse[p] * ng : 0.0f;
      float* __restrict o = (stream ? V + S * C : out + u * R * C) + v * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float f = std::fma(kh[3], c3[c], std::fma(kh[2], c2[c], std::fma(kh[1], c1[c],
                                                                             k0 * c0[c])));
        const float y = f + bias[c] + nv;
        o[c] = std::clamp(y > 0.0f ? y : y * sl, -cl, cl);
      }
    }
    if (stream) stream_copy(out + u * R * C, V + S * C, R * C, true);
  }
  store_fence(stream);
}

}  // namespace

torch::Tensor fir_noise_lrelu(torch::Tensor T, torch::Tensor kv, torch::Tensor kh,
                              torch::Tensor bias, c10::optional<torch::Tensor> noise,
                              double noise_gain, double slope, double clamp) {
  // The epilogue of an up-sampling layer in one pass: T [1, C, 2H+2, 2W+2] is an even-sized
  // transposed convolution (last row and column zero); the 4x4 FIR kv (x) kh with padding 1,
  // bias, noise and leaky ReLU give a [1, C, 2H, 2W].
  check_activation(T, "T");
  TORCH_CHECK(T.size(2) == T.size(3) && T.size(2) >= 4, "T must be square, at least 4x4");
  for (const auto* t : {&kv, &kh})
    TORCH_CHECK(t->scalar_type() == torch::kFloat32 && t->is_contiguous() && t->numel() == 4,
                "kv and kh must be 4 float32 taps");
  TORCH_CHECK(bias.scalar_type() == torch::kFloat32 && bias.is_contiguous() &&
                  bias.numel() == T.size(1), "bias must be [C] float32");
  const int64_t C = T.size(1), S = T.size(2), R = S - 2;
  auto out = torch::empty({1, C, R, R}, T.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* const pT = T.data_ptr<float>();
  const float* const pkv = kv.data_ptr<float>();
  const float* const pkh = kh.data_ptr<float>();
  const float* const pb = bias.data_ptr<float>();
  const float* const nse = noise_data(noise, out);
  float* const po = out.data_ptr<float>();
  const float ng = static_cast<float>(noise_gain), sl = static_cast<float>(slope);
  const float cl = clamp > 0 ? static_cast<float>(clamp) : INFINITY;
  const bool stream = use_streaming_stores(out);
  at::parallel_for(0, R, 4, [=](int64_t u0, int64_t u1) {
    std::vector<float> V(static_cast<size_t>(2 * S * C));
    if (C == 32)
      fir_rows<32>(u0, u1, C, S, pT, pkv, pkh, pb, nse, ng, sl, cl, po, V.data(), stream);
    else if (C == 64)
      fir_rows<64>(u0, u1, C, S, pT, pkv, pkh, pb, nse, ng, sl, cl, po, V.data(), stream);
    else
      fir_rows<0>(u0, u1, C, S, pT, pkv, pkh, pb, nse, ng, sl, cl, po, V.data(), stream);
  });
  return out;
}

namespace {

// One pixel range of the backward pass. Template parameters: an incoming dL/da (else 0);
// kK, the channels of a ToRGB layer reading a (0: none, -1: given at run time), whose gradient
// is added to dL/da and whose weight gradient is summed; the sum of dL/da * a (the style
// gradient of the next layer, whose input a is); kC, the channels when known at compile time
// (0: at run time). Fixed small C and K = 3 let the compiler keep one pixel's work in
// registers: at C = 32 a pixel is only four 8-wide vectors.
template <bool kGrad, int kK, bool kInputDot, int kC>
void backward_range(int64_t first, int64_t end, int64_t c_run, int64_t k_run, const float* pa,
                    const float* pg, const float* pr, const float* wr, const float* nse,
                    float ng, float sl, float cl, float* pt, double* out, float* partial,
                    float* g) {
  const int64_t C = kC > 0 ? kC : c_run;
  const int64_t K = kK >= 0 ? kK : k_run;
  const int64_t rows = 2 + (kInputDot ? 1 : 0) + K;
  const float inv_sl = 1.0f / sl;
  const float* __restrict w0 = wr;
  const float* __restrict w1 = wr + C;
  const float* __restrict w2 = wr + 2 * C;
  for (int64_t p0 = first; p0 < end; p0 += 256) {
    std::fill(partial, partial + rows * C, 0.0f);
    float* __restrict dot = partial;
    float* __restrict sum = dot + C;
    float* __restrict in_dot = sum + C;
    float* __restrict rgb_dot = in_dot + (kInputDot ? C : 0);
    float* __restrict rd0 = rgb_dot;
    float* __restrict rd1 = rgb_dot + C;
    float* __restrict rd2 = rgb_dot + 2 * C;
    float* __restrict gv = g;
    for (int64_t p = p0, p1 = std::min(end, p0 + 256); p < p1; ++p) {
      const float nv = nse ? nse[p] * ng : 0.0f;
      const float* __restrict ra = pa + p * C;
      const float* __restrict rg = kGrad ? pg + p * C : nullptr;
      float* __restrict rt = pt + (p - first) * C;  // pt: dL/dt of pixel `first`
      float r0 = 0.0f, r1 = 0.0f, r2 = 0.0f;
      if constexpr (kK == 3) {
        r0 = pr[p * 3];
        r1 = pr[p * 3 + 1];
        r2 = pr[p * 3 + 2];
      } else if constexpr (kK != 0) {  // any K: dL/da into a buffer first
        for (int64_t c = 0; c < C; ++c) gv[c] = kGrad ? rg[c] : 0.0f;
        for (int64_t k = 0; k < K; ++k) {
          const float gk = pr[p * K + k];
          const float* __restrict wk = wr + k * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) gv[c] += gk * wk[c];
        }
      }
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float av = ra[c];
        float gin;
        if constexpr (kK == 3) {
          gin = (kGrad ? rg[c] : 0.0f) + r0 * w0[c] + r1 * w1[c] + r2 * w2[c];
          rd0[c] += r0 * av;
          rd1[c] += r1 * av;
          rd2[c] += r2 * av;
        } else if constexpr (kK != 0) {
          gin = gv[c];
        } else {
          gin = rg[c];
        }
        const bool pos = av > 0.0f;
        const float gt = std::fabs(av) >= cl ? 0.0f : (pos ? gin : gin * sl);
        rt[c] = gt;
        dot[c] += gt * ((pos ? av : av * inv_sl) - nv);
        sum[c] += gt;
        if constexpr (kInputDot) in_dot[c] += rg[c] * av;
      }
      if constexpr (kK < 0) {
        for (int64_t k = 0; k < K; ++k) {
          const float gk = pr[p * K + k];
          float* __restrict dk = rgb_dot + k * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dk[c] += gk * ra[c];
        }
      }
    }
    for (int64_t c = 0; c < rows * C; ++c) out[c] += partial[c];
  }
}

// Runs backward_range with the template arguments that match the run-time flags.
template <int kC>
void dispatch_backward(bool has_grad, int64_t K, bool input_dot, int64_t b, int64_t e,
                       int64_t C, const float* pa, const float* pg, const float* pr,
                       const float* wr, const float* nse, float ng, float sl, float cl, float* pt,
                       double* out, float* partial, float* g) {
#define I2S_RUN(GRAD, KK, DOT) \
  backward_range<GRAD, KK, DOT, kC>(b, e, C, K, pa, pg, pr, wr, nse, ng, sl, cl, pt, out, \
                                    partial, g)
  if (K == 0) {
    if (input_dot) I2S_RUN(true, 0, true);
    else I2S_RUN(true, 0, false);
  } else if (K == 3) {
    if (has_grad) I2S_RUN(true, 3, false);
    else I2S_RUN(false, 3, false);
  } else {
    if (has_grad) I2S_RUN(true, -1, false);
    else I2S_RUN(false, -1, false);
  }
#undef I2S_RUN
}

void run_backward(bool has_grad, int64_t K, bool input_dot, int64_t b, int64_t e, int64_t C,
                  const float* pa, const float* pg, const float* pr, const float* wr,
                  const float* nse, float ng, float sl, float cl, float* pt, double* out,
                  float* partial, float* g) {
  if (C == 32)
    dispatch_backward<32>(has_grad, K, input_dot, b, e, C, pa, pg, pr, wr, nse, ng, sl, cl, pt,
                          out, partial, g);
  else if (C == 64)
    dispatch_backward<64>(has_grad, K, input_dot, b, e, C, pa, pg, pr, wr, nse, ng, sl, cl, pt,
                          out, partial, g);
  else
    dispatch_backward<0>(has_grad, K, input_dot, b, e, C, pa, pg, pr, wr, nse, ng, sl, cl, pt,
                         out, partial, g);
}

// Splits [0, n) into one contiguous range per thread and runs body(begin, end, totals) on
// each, totals being that range's [width] double accumulators. Returns the totals added in
// range order (deterministic for a given thread count), as float32 [width].
template <typename Body>
torch::Tensor sum_over_ranges(int64_t n, int64_t width, const Body& body) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n));
  const int64_t span = (n + parts - 1) / parts;
  std::vector<double> totals(static_cast<size_t>(parts * width), 0.0);
  at::parallel_for(0, parts, 1, [&](int64_t first, int64_t last) {
    for (int64_t part = first; part < last; ++part)
      body(part * span, std::min(n, (part + 1) * span), totals.data() + part * width);
  });
  auto sums = torch::zeros({width}, torch::kFloat64);
  double* const ps = sums.data_ptr<double>();
  for (int64_t part = 0; part < parts; ++part)
    for (int64_t i = 0; i < width; ++i) ps[i] += totals[part * width + i];
  return sums.to(torch::kFloat32);
}

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> noise_lrelu_backward(
    c10::optional<torch::Tensor> grad_a, torch::Tensor a, c10::optional<torch::Tensor> noise,
    double noise_gain, double slope, double clamp, c10::optional<torch::Tensor> rgb_grad,
    c10::optional<torch::Tensor> rgb_weight, bool input_dot) {
  check_activation(a, "a");
  const int64_t channels = a.size(1);
  const int64_t pixels = a.numel() / channels;
  const bool has_grad = grad_a.has_value();
  const bool has_rgb = rgb_grad.has_value();
  TORCH_CHECK(has_grad || has_rgb, "no incoming gradient");
  TORCH_CHECK(has_grad || !input_dot, "input_dot needs grad_a");
  TORCH_CHECK(!(input_dot && has_rgb), "input_dot and rgb_grad are not combined");
  TORCH_CHECK(has_rgb == rgb_weight.has_value(), "rgb_grad and rgb_weight come together");
  const float* pg = nullptr;
  if (has_grad) {
    check_activation(*grad_a, "grad_a");
    TORCH_CHECK(grad_a->sizes() == a.sizes(), "grad_a and a differ in shape");
    pg = grad_a->data_ptr<float>();
  }
  int64_t K = 0;
  const float *pr = nullptr, *wr = nullptr;
  if (has_rgb) {
    check_activation(*rgb_grad, "rgb_grad");
    K = rgb_grad->size(1);
    TORCH_CHECK(rgb_grad->size(2) == a.size(2) && rgb_grad->size(3) == a.size(3),
                "rgb_grad and a differ in size");
    TORCH_CHECK(rgb_weight->scalar_type() == torch::kFloat32 && rgb_weight->is_contiguous() &&
                    rgb_weight->dim() == 2 && rgb_weight->size(0) == K &&
                    rgb_weight->size(1) == channels,
                "rgb_weight must be a contiguous float32 [K, C] tensor");
    pr = rgb_grad->data_ptr<float>();
    wr = rgb_weight->data_ptr<float>();
  }
  const int64_t rows = 2 + (input_dot ? 1 : 0) + K;
  auto grad_t = torch::empty_like(a);
  const float* const pa = a.data_ptr<float>();
  float* const pt = grad_t.data_ptr<float>();
  const float* const nse = noise_data(noise, a);
  const float ng = static_cast<float>(noise_gain), sl = static_cast<float>(slope);
  const float cl = clamp > 0 ? static_cast<float>(clamp) : INFINITY;
  // One contiguous range of pixels per thread; float partial sums over 256 pixels are added
  // into double per-thread totals.
  auto sums = sum_over_ranges(pixels, rows * channels, [=](int64_t b, int64_t e, double* out) {
    const int64_t C = channels;
    std::vector<float> partial(static_cast<size_t>(rows * C)), g(static_cast<size_t>(C));
    run_backward(has_grad, K, input_dot, b, e, C, pa, pg, pr, wr, nse, ng, sl, cl, pt + b * C,
                 out, partial.data(), g.data());
  });
  return {grad_t, sums.reshape({rows, channels})};
}

std::tuple<torch::Tensor, torch::Tensor> noise_lrelu_fir_backward(
    torch::Tensor grad_a, torch::Tensor a, c10::optional<torch::Tensor> noise, double noise_gain,
    double slope, double clamp, torch::Tensor kv, torch::Tensor kh, bool input_dot) {
  // The backward of fir_noise_lrelu up to its input T: dL/dt as in noise_lrelu_backward, then
  // the adjoint of the FIR (kv (x) kh, padding 1), without writing dL/dt:
  //   dL/dT[r][s] = sum_{m,n} kv[m] kh[n] dL/dt[r+1-m][s+1-n],  r, s in 0..R  (a is R x R).
  // Each thread makes rows [r0, r1) of dL/dT from a ring of four rows of dL/dt; it computes
  // dL/dt rows r0-2 .. r1 and adds to the sums only those in [r0, r1), which it owns.
  check_activation(a, "a");
  check_activation(grad_a, "grad_a");
  TORCH_CHECK(grad_a.sizes() == a.sizes() && a.size(2) == a.size(3), "a must be square");
  for (const auto* t : {&kv, &kh})
    TORCH_CHECK(t->scalar_type() == torch::kFloat32 && t->is_contiguous() && t->numel() == 4,
                "kv and kh must be 4 float32 taps");
  const int64_t C = a.size(1), R = a.size(2), S = R + 1;
  const int64_t rows = 2 + (input_dot ? 1 : 0);
  auto grad_T = torch::empty({1, C, S, S}, a.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* const pa = a.data_ptr<float>();
  const float* const pg = grad_a.data_ptr<float>();
  const float* const nse = noise_data(noise, a);
  const float* const pkv = kv.data_ptr<float>();
  const float* const pkh = kh.data_ptr<float>();
  float* const po = grad_T.data_ptr<float>();
  const float ng = static_cast<float>(noise_gain), sl = static_cast<float>(slope);
  const float cl = clamp > 0 ? static_cast<float>(clamp) : INFINITY;
  const bool stream = use_streaming_stores(grad_T);
  auto sums = sum_over_ranges(S, rows * C, [=](int64_t r0, int64_t r1, double* owned) {
    const int64_t RC = R * C;
    std::vector<float> ring(static_cast<size_t>(4 * RC)), partial(static_cast<size_t>(rows * C));
    std::vector<float> g(static_cast<size_t>(C)), wp(static_cast<size_t>((R + 4) * C), 0.0f);
    std::vector<double> scratch(static_cast<size_t>(rows * C));
    const std::vector<float> zero(static_cast<size_t>(RC), 0.0f);
    int64_t next = std::max<int64_t>(0, r0 - 2);
    for (int64_t r = r0; r < r1; ++r) {
      for (; next <= std::min(R - 1, r + 1); ++next) {  // dL/dt row `next` into the ring
        double* out = next >= r0 && next < r1 ? owned : scratch.data();
        run_backward(true, 0, input_dot, next * R, (next + 1) * R, C, pa, pg, nullptr, nullptr,
                     nse, ng, sl, cl, ring.data() + (next % 4) * RC, out, partial.data(),
                     g.data());
      }
      // vertical taps into wp (two zero columns on each side): rows r+1, r, r-1, r-2
      const float* src[4];
      for (int64_t m = 0; m < 4; ++m) {
        const int64_t u = r + 1 - m;
        src[m] = u < 0 || u >= R ? zero.data() : ring.data() + (u % 4) * RC;
      }
      float* __restrict w = wp.data() + 2 * C;
      const float* __restrict s0 = src[0];
      const float* __restrict s1 = src[1];
      const float* __restrict s2 = src[2];
      const float* __restrict s3 = src[3];
      const float v0 = pkv[0], v1 = pkv[1], v2 = pkv[2], v3 = pkv[3];
#pragma omp simd
      for (int64_t i = 0; i < RC; ++i)
        w[i] = std::fma(v3, s3[i], std::fma(v2, s2[i], std::fma(v1, s1[i], v0 * s0[i])));
      // horizontal taps: columns s+1, s, s-1, s-2 are wp columns s+3, s+2, s+1, s
      horizontal_taps(wp.data(), po + r * S * C, S * C, C, pkh, stream);
    }
    store_fence(stream);
  });
  return {grad_T, sums.reshape({rows, C})};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("noise_lrelu_", &noise_lrelu_, "In-place noise + leaky ReLU (+ clamp)");
  m.def("noise_lrelu_fir_backward", &noise_lrelu_fir_backward,
        "Backward of fir_noise_lrelu: dL/dT and the per-channel sums");
  m.def("fir_noise_lrelu", &fir_noise_lrelu,
        "Up-sampling layer epilogue: separable 4x4 FIR, bias, noise, leaky ReLU (+ clamp)");
  m.def("noise_lrelu_backward", &noise_lrelu_backward,
        "Leaky-ReLU gradient and the per-channel sums of the folded layer", py::arg("grad_a"),
        py::arg("a"), py::arg("noise"), py::arg("noise_gain"), py::arg("slope"),
        py::arg("clamp"), py::arg("rgb_grad") = py::none(), py::arg("rgb_weight") = py::none(),
        py::arg("input_dot") = false);
}
