#!/usr/bin/env python3
"""GEMM rates (GFLOP/s) of the retrieval similarity blocks through libtorch's BLAS (MKL) for block shapes and
orientations: texts · imagesᵀ, images · textsᵀ, images · (textsᵀ contiguous). Chooses Retrieval.crossModal's CPU
blocks (4096 images × 512 reports, images · textsᵀ contiguous). Usage: .venv-ref/bin/python bench/retrieval_gemm.py
"""
import time, torch
torch.set_num_threads(2)
n, d = 50000, 768
I = torch.randn(n, d); T = torch.randn(n, d)
def t(f, k=3):
    f(); ts=[]
    for _ in range(k):
        a=time.perf_counter(); f(); ts.append(time.perf_counter()-a)
    return min(ts)
for c, b in ((512, 8192), (512, 4096), (1024, 8192), (256, 16384)):
    tc = T[:c]
    s1 = t(lambda: [tc @ I[j:j+b].t() for j in range(0, n, b)])
    s2 = t(lambda: [I[j:j+b] @ tc.t() for j in range(0, n, b)])
    tct = tc.t().contiguous()
    s3 = t(lambda: [I[j:j+b] @ tct for j in range(0, n, b)])
    print(c, b, "T·Iᵀ %.0f  I·Tᵀ %.0f  I·(Tᵀ contiguous) %.0f GFLOP/s" % tuple(2*c*n*d/s/1e9 for s in (s1, s2, s3)))
