// Fused elementwise passes of a folded StyleGAN2 synthesis layer on the CPU (one sample,
// float32, channels-last: the activation is a row-major [P = H*W, C] matrix).
//
// Forward, in place:  a = clamp(lrelu(y + n * noise_gain, slope), -clamp, clamp)
// Backward, one pass over dL/da and a:
//   g_t      = dL/da * lrelu'(t), 0 where |a| >= clamp        (t = y + n * noise_gain)
//   sums[0]  = sum_hw g_t * (t - n * noise_gain)               per channel (= sum g_t * y)
//   sums[1]  = sum_hw g_t                                      per channel
// t is recovered from a (leaky ReLU with slope > 0 is invertible), so y need not be kept.
// See i2s/folded_layer.py for the maths; i2s/fused_cpu.py builds this file on first use.

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

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

std::tuple<torch::Tensor, torch::Tensor> noise_lrelu_backward(
    torch::Tensor grad_a, torch::Tensor a, c10::optional<torch::Tensor> noise, double noise_gain,
    double slope, double clamp) {
  check_activation(a, "a");
  check_activation(grad_a, "grad_a");
  TORCH_CHECK(grad_a.sizes() == a.sizes(), "grad_a and a differ in shape");
  const int64_t channels = a.size(1);
  const int64_t pixels = a.numel() / channels;
  auto grad_t = torch::empty_like(a);
  const float* const pa = a.data_ptr<float>();
  const float* const pg = grad_a.data_ptr<float>();
  float* const pt = grad_t.data_ptr<float>();
  const float* const nse = noise_data(noise, a);
  const float ng = static_cast<float>(noise_gain), sl = static_cast<float>(slope);
  const float inv_sl = 1.0f / sl;
  const float cl = clamp > 0 ? static_cast<float>(clamp) : INFINITY;
  // One contiguous range of pixels per thread; float partial sums over 256 pixels are added
  // into double per-thread totals, which are added in thread order (deterministic).
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), pixels));
  const int64_t span = (pixels + parts - 1) / parts;
  std::vector<double> totals(static_cast<size_t>(parts * 2 * channels), 0.0);
  double* const tot = totals.data();
  at::parallel_for(0, parts, 1, [=](int64_t first, int64_t last) {
    const int64_t C = channels;
    std::vector<float> partial(static_cast<size_t>(2 * C));
    for (int64_t part = first; part < last; ++part) {
      double* __restrict out = tot + part * 2 * C;
      const int64_t end = std::min(pixels, (part + 1) * span);
      for (int64_t p0 = part * span; p0 < end; p0 += 256) {
        float* __restrict dot = partial.data();
        float* __restrict sum = dot + C;
        std::fill(partial.begin(), partial.end(), 0.0f);
        for (int64_t p = p0, p1 = std::min(end, p0 + 256); p < p1; ++p) {
          const float nv = nse ? nse[p] * ng : 0.0f;
          const float* __restrict ra = pa + p * C;
          const float* __restrict rg = pg + p * C;
          float* __restrict rt = pt + p * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const float av = ra[c];
            const bool pos = av > 0.0f;
            const float gt = std::fabs(av) >= cl ? 0.0f : (pos ? rg[c] : rg[c] * sl);
            rt[c] = gt;
            dot[c] += gt * ((pos ? av : av * inv_sl) - nv);
            sum[c] += gt;
          }
        }
        for (int64_t c = 0; c < 2 * C; ++c) out[c] += partial[c];
      }
    }
  });
  auto sums = torch::zeros({2, channels}, torch::kFloat64);
  double* const ps = sums.data_ptr<double>();
  for (int64_t part = 0; part < parts; ++part)
    for (int64_t c = 0; c < 2 * channels; ++c) ps[c] += tot[part * 2 * channels + c];
  return {grad_t, sums.to(torch::kFloat32)};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("noise_lrelu_", &noise_lrelu_, "In-place noise + leaky ReLU (+ clamp)");
  m.def("noise_lrelu_backward", &noise_lrelu_backward,
        "Leaky-ReLU gradient and the per-channel sums of the folded layer");
}
