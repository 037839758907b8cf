// Distributed collectives of the shim: c10d process groups (a TCP store for the rendezvous, the Gloo backend on
// CPUs, NCCL in CUDA builds) and the collectives data-parallel training needs. Every call blocks until its
// collective is done (or failed); every C++ exception becomes the thread's last error.
//
// The Gloo backend is libtorch's own c10d::ProcessGroupGloo (compiled into libtorch_cpu). PyPI's wheel ships no gloo
// headers, which ProcessGroupGloo.hpp includes; scripts/setup.sh installs Debian's libgloo-dev for them. This file
// only uses what the c10d headers declare with gloo types behind pointers (shared_ptr<gloo::transport::Device>,
// gloo::Context), so the layouts it relies on do not depend on which gloo version the headers come from; no gloo
// object is constructed here.
#include "internal.hpp"

#include <torch/csrc/autograd/custom_function.h>
// libtorch is built with these (its libtorch_cpu exports c10d::ProcessGroupGloo); the c10d headers hide their
// declarations without them.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#ifndef USE_DISTRIBUTED
#define USE_DISTRIBUTED 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#if defined(CT_WITH_NCCL)
// GREENRFM_NCCL=1 builds (Package.swift): libtorch_cuda's c10d::ProcessGroupNCCL. Untested (no GPU here).
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

using ctorch::T;
using ctorch::wrap;

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank = 0;
  int size = 1;
  std::string name;
};

Group &G(ct_process_group g) { return *reinterpret_cast<Group *>(g); }

c10d::ReduceOp reduce_op(ct_dist_reduce_op op) {
  switch (op) {
    case CT_DIST_SUM: return c10d::ReduceOp::SUM;
    case CT_DIST_MAX: return c10d::ReduceOp::MAX;
    case CT_DIST_MIN: return c10d::ReduceOp::MIN;
  }
  throw std::invalid_argument("unknown ct_dist_reduce_op " + std::to_string(static_cast<int>(op)));
}

// Waits for a collective; a failed or timed-out one throws (c10d's message names the peer or the time-out).
void wait(const c10::intrusive_ptr<c10d::Work> &work) {
  if (!work->wait()) throw std::runtime_error("the collective was aborted");
}

bool is_loopback(const std::string &host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// A differentiable sum over ranks: forward all-reduces the input, backward all-reduces the gradient (every rank's
// loss depends on the sum, so each input's gradient is the sum of the ranks' gradients). Both run in the same order
// on every rank because autograd visits the graph in the same order everywhere.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x, int64_t group) {
    ctx->saved_data["group"] = group;
    auto out = x.detach().clone(at::MemoryFormat::Contiguous);
    std::vector<at::Tensor> ts{out};
    wait(reinterpret_cast<Group *>(group)->backend->allreduce(ts, c10d::AllreduceOptions{}));
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto group = ctx->saved_data["group"].toInt();
    auto g = grads[0].detach().clone(at::MemoryFormat::Contiguous);
    std::vector<at::Tensor> ts{g};
    wait(reinterpret_cast<Group *>(group)->backend->allreduce(ts, c10d::AllreduceOptions{}));
    return {g, at::Tensor()};
  }
};

}  // namespace

extern "C" {

ct_status ct_dist_init(const char *master_addr, int32_t master_port, int32_t rank, int32_t world_size,
                       const char *backend, int64_t timeout_ms, ct_process_group *out) {
  CT_GUARD({
    if (world_size < 1) throw std::invalid_argument("WORLD_SIZE must be at least 1, not " + std::to_string(world_size));
    if (rank < 0 || rank >= world_size)
      throw std::invalid_argument("RANK " + std::to_string(rank) + " is outside 0..<" + std::to_string(world_size));
    if (master_port < 1 || master_port > 65535)
      throw std::invalid_argument("MASTER_PORT " + std::to_string(master_port) + " is outside 1...65535");
    if (timeout_ms <= 0) throw std::invalid_argument("the time-out must be positive");
    const std::string host(master_addr), kind(backend);
    if (kind != "gloo" && kind != "nccl") throw std::invalid_argument("unknown backend '" + kind + "' (gloo or nccl)");
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(master_port);
    so.isServer = rank == 0;
    so.numWorkers = static_cast<std::size_t>(world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> store;
    try {
      store = c10::make_intrusive<c10d::TCPStore>(host, so);
    } catch (const std::exception &e) {
      throw std::runtime_error("rank " + std::to_string(rank) + " could not " +
                               (rank == 0 ? "host the rendezvous at " : "reach the master at ") + host + ":" +
                               std::to_string(master_port) + " within " + std::to_string(timeout_ms / 1000.0) +
                               " s (" + (rank == 0 ? "did every rank start? " : "is rank 0 running? ") +
                               "check MASTER_ADDR, MASTER_PORT, WORLD_SIZE): " + e.what());
    }
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("greenrfm/" + kind, store);
    auto group = std::make_unique<Group>();
    group->store = store;
    group->rank = rank;
    group->size = world_size;
    group->name = kind;
    if (kind == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char *ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (is_loopback(host)) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      options->threads = 1;
      group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world_size, options);
    } else if (kind == "nccl") {
#if defined(CT_WITH_NCCL)
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, world_size, options);
#else
      throw std::invalid_argument(
          "the nccl backend is not compiled in (build with GREENRFM_CUDA=1 GREENRFM_NCCL=1 against a CUDA libtorch); "
          "use gloo");
#endif
    } else {
      throw std::invalid_argument("unknown backend '" + kind + "' (gloo or nccl)");
    }
    *out = reinterpret_cast<ct_process_group>(group.release());
  })
}

void ct_dist_free(ct_process_group g) {
  if (g == nullptr) return;
  try {
    delete reinterpret_cast<Group *>(g);
  } catch (...) {
  }
}

ct_status ct_dist_rank(ct_process_group g, int32_t *rank, int32_t *size) {
  CT_GUARD(*rank = G(g).rank; *size = G(g).size)
}

ct_status ct_dist_all_reduce(ct_process_group g, ct_tensor t, ct_dist_reduce_op op) {
  CT_GUARD({
    if (!T(t).is_contiguous()) throw std::invalid_argument("all_reduce: the tensor must be contiguous");
    std::vector<at::Tensor> ts{T(t)};
    c10d::AllreduceOptions o;
    o.reduceOp = reduce_op(op);
    wait(G(g).backend->allreduce(ts, o));
  })
}

ct_status ct_dist_all_reduce_sum_autograd(ct_process_group g, ct_tensor t, ct_tensor *out) {
  CT_GUARD(*out = wrap(AllReduceSum::apply(T(t), reinterpret_cast<int64_t>(g))))
}

ct_status ct_dist_broadcast(ct_process_group g, ct_tensor t, int32_t root) {
  CT_GUARD({
    if (!T(t).is_contiguous()) throw std::invalid_argument("broadcast: the tensor must be contiguous");
    std::vector<at::Tensor> ts{T(t)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    wait(G(g).backend->broadcast(ts, o));
  })
}

ct_status ct_dist_all_gather(ct_process_group g, ct_tensor t, ct_tensor *out) {
  CT_GUARD({
    auto x = T(t).detach().contiguous();
    std::vector<at::Tensor> parts;
    for (int i = 0; i < G(g).size; i++) parts.push_back(at::empty_like(x));
    std::vector<std::vector<at::Tensor>> outputs{parts};
    std::vector<at::Tensor> inputs{x};
    wait(G(g).backend->allgather(outputs, inputs, c10d::AllgatherOptions{}));
    *out = wrap(at::cat(outputs[0], 0));
  })
}

ct_status ct_dist_barrier(ct_process_group g) {
  CT_GUARD(wait(G(g).backend->barrier(c10d::BarrierOptions{})))
}

}  // extern "C"
