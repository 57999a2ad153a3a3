"""Tensor operations of the generators: FIR resampling, modulated convolution, the folded
single-sample layers and blocks with hand-written backward passes, their compiled CPU kernels
(``csrc/``), the one switch that picks a synthesis layer's path (:mod:`.synthesis_path`), and
the opt-in glibc allocator setting (:mod:`.cpu_allocator`)."""
