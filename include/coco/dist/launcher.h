// `--nproc N`: a data-parallel job on this machine without torchrun. The launcher does
// what torchrun's agent does: it hosts the rendezvous store, starts N copies of the tool
// with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and
// TORCHELASTIC_USE_AGENT_STORE set, and waits for them.
//
// The first worker to fail ends the job: the launcher prints one line naming its rank and
// how it ended, stops the others (SIGTERM, then SIGKILL after `grace_seconds`) and returns
// its exit code. Ctrl-C (SIGINT) or SIGTERM to the launcher is passed to every worker once,
// so each finishes its batch and rank 0 keeps the checkpoint.
#pragma once

#include <string>
#include <vector>

namespace coco::dist {

/// Runs this executable (/proc/self/exe) with `args` (argv[1..] without --nproc) as
/// `nproc` workers; returns the exit code of the job.
int launch_local(int nproc, const std::vector<std::string>& args, double grace_seconds = 10);

/// argv[1..] without "--nproc N" / "--nproc=N" (what each worker runs).
std::vector<std::string> without_nproc(int argc, char** argv);

}  // namespace coco::dist
