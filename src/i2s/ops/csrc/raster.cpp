// The visible face of every pixel of one view: the z-buffer of i2s.get3d.raster's PyTorch
// path, one face's screen bounding box at a time.
//
// Every quantity is computed with the same float32 operations in the same order as the
// PyTorch path (built with -ffp-contract=off, so no fused multiply-adds), so the two give the
// same face for every pixel: edge functions of the (x, y, w) rows as cross products, the
// determinant as a dot product with the first vertex, pixel centres in NDC, coverage
// (every edge function of the determinant's sign, their sum strictly so), z/w in [-1, 1], and
// the nearest face by the key (orderable z/w bits << 32 | face index), smallest first.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace {

struct V3 {
  float x, y, z;
};

inline V3 cross(const V3& a, const V3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}

inline float dot(const V3& a, const V3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }

// float32 -> int64 ordered as the floats (IEEE bits, negatives' magnitude bits flipped)
inline int64_t orderable(float v) {
  int32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if (bits < 0) bits ^= 0x7FFFFFFF;
  return static_cast<int64_t>(bits);
}

// a torch.sum over three values: accumulated from zero, left to right
inline float sum3(float a, float b, float c) { return ((0.0f + a) + b) + c; }

}  // namespace

// clip: [V, 4] float32 (x, y, z, w); faces: [F, 3] int64. Returns [h * w] int64: the index
// of the visible face of each pixel (row-major), -1 where none covers it.
torch::Tensor nearest_faces(torch::Tensor clip, torch::Tensor faces, int64_t h, int64_t w) {
  TORCH_CHECK(clip.dim() == 2 && clip.size(1) == 4 && clip.scalar_type() == torch::kFloat32,
              "clip must be float32 [V, 4]");
  TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3 && faces.scalar_type() == torch::kInt64,
              "faces must be int64 [F, 3]");
  TORCH_CHECK(h > 0 && w > 0, "the image must have pixels");
  clip = clip.contiguous();
  faces = faces.contiguous();
  const int64_t no_hit = std::numeric_limits<int64_t>::max();
  auto zbuf = torch::full({h * w}, no_hit, torch::dtype(torch::kInt64));
  int64_t* zb = zbuf.data_ptr<int64_t>();
  const float* c = clip.data_ptr<float>();
  const int64_t* fv = faces.data_ptr<int64_t>();
  const int64_t nv = clip.size(0), nf = faces.size(0);
  const float half_w = static_cast<float>(w / 2.0), half_h = static_cast<float>(h / 2.0);
  const float fw = static_cast<float>(w), fh = static_cast<float>(h);
  const float eps = static_cast<float>(1e-3);

  for (int64_t f = 0; f < nf; ++f) {
    float x[3], y[3], z[3], ww[3];
    for (int k = 0; k < 3; ++k) {
      const int64_t v = fv[3 * f + k];
      TORCH_CHECK(v >= 0 && v < nv, "a face refers to a vertex that does not exist");
      x[k] = c[4 * v];
      y[k] = c[4 * v + 1];
      z[k] = c[4 * v + 2];
      ww[k] = c[4 * v + 3];
    }
    auto all = [](auto pred) { return pred(0) && pred(1) && pred(2); };
    const bool outside = all([&](int k) { return x[k] > ww[k]; }) ||
                         all([&](int k) { return x[k] < -ww[k]; }) ||
                         all([&](int k) { return y[k] > ww[k]; }) ||
                         all([&](int k) { return y[k] < -ww[k]; }) ||
                         all([&](int k) { return z[k] > ww[k]; }) ||
                         all([&](int k) { return z[k] < -ww[k]; }) ||
                         all([&](int k) { return ww[k] <= 0.0f; });
    if (outside) continue;
    const V3 a0{x[0], y[0], ww[0]}, a1{x[1], y[1], ww[1]}, a2{x[2], y[2], ww[2]};
    const V3 r0 = cross(a1, a2), r1 = cross(a2, a0), r2 = cross(a0, a1);
    const float det = dot(a0, r0);
    if (det == 0.0f) continue;
    // pixel ranges of the screen bounding box (the whole image if a vertex is behind the eye)
    float j0 = 0.0f, j1 = fw - 1.0f, i0 = 0.0f, i1 = fh - 1.0f;
    if (all([&](int k) { return ww[k] > 0.0f; })) {
      float sx[3], sy[3];
      for (int k = 0; k < 3; ++k) {
        sx[k] = (x[k] / ww[k] + 1.0f) * half_w;
        sy[k] = (y[k] / ww[k] + 1.0f) * half_h;
      }
      const float xmin = std::min({sx[0], sx[1], sx[2]}), xmax = std::max({sx[0], sx[1], sx[2]});
      const float ymin = std::min({sy[0], sy[1], sy[2]}), ymax = std::max({sy[0], sy[1], sy[2]});
      if (std::isnan(xmin) || std::isnan(xmax) || std::isnan(ymin) || std::isnan(ymax)) continue;
      j0 = std::ceil(xmin - 0.5f - eps);
      j1 = std::floor(xmax - 0.5f + eps);
      i0 = std::ceil(ymin - 0.5f - eps);
      i1 = std::floor(ymax - 0.5f + eps);
    }
    const int64_t c0 = static_cast<int64_t>(std::clamp(j0, 0.0f, fw));
    const int64_t c1 = static_cast<int64_t>(std::clamp(j1, -1.0f, fw - 1.0f));
    const int64_t q0 = static_cast<int64_t>(std::clamp(i0, 0.0f, fh));
    const int64_t q1 = static_cast<int64_t>(std::clamp(i1, -1.0f, fh - 1.0f));
    for (int64_t row = q0; row <= q1; ++row) {
      const float py = static_cast<float>(2 * row + 1) / fh - 1.0f;
      for (int64_t col = c0; col <= c1; ++col) {
        const float px = static_cast<float>(2 * col + 1) / fw - 1.0f;
        const V3 p{px, py, 1.0f};
        const float l0 = dot(r0, p), l1 = dot(r1, p), l2 = dot(r2, p);
        const float s = sum3(l0, l1, l2);
        if (!(l0 * det >= 0.0f && l1 * det >= 0.0f && l2 * det >= 0.0f && s * det > 0.0f))
          continue;
        const float zw = sum3(l0 * z[0], l1 * z[1], l2 * z[2]) / det;
        if (!(zw >= -1.0f && zw <= 1.0f)) continue;
        const int64_t key =
            static_cast<int64_t>(static_cast<uint64_t>(orderable(zw)) << 32) | f;
        int64_t& slot = zb[row * w + col];
        if (key < slot) slot = key;
      }
    }
  }
  auto hit = zbuf != no_hit;
  return torch::where(hit, zbuf & 0xFFFFFFFF, torch::full_like(zbuf, -1));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("nearest_faces", &nearest_faces,
        "The visible face of every pixel of one view [h * w] (-1 background)",
        py::arg("clip"), py::arg("faces"), py::arg("h"), py::arg("w"));
}
