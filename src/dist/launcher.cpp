// The local launcher of --nproc N: store host, process supervisor and signal relay.
#include "coco/dist/launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "coco/common/error.h"

namespace coco::dist {

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal.store(sig); }

// How a worker ended, in words, and the exit code it stands for.
std::pair<std::string, int> describe(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return {fmt::format("was killed by signal {} ({})", sig, strsignal(sig)), 128 + sig};
  }
  return {fmt::format("exited with code {}", WEXITSTATUS(status)), WEXITSTATUS(status)};
}

// Starts one worker with `env` added to this process's environment.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  static const std::string self = "/proc/self/exe";
  std::vector<std::string> vars = env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e, name = kv.substr(0, kv.find('='));
    bool ours = false;
    for (const auto& v : env) ours = ours || v.compare(0, name.size() + 1, name + "=") == 0;
    if (!ours) vars.push_back(kv);
  }
  std::vector<char*> argv = {const_cast<char*>(self.c_str())}, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  for (const auto& v : vars) envp.push_back(const_cast<char*>(v.c_str()));
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("--nproc: fork failed: ") + std::strerror(errno));
  if (pid > 0) return pid;
  // The worker: its own process group, so that a terminal's Ctrl-C reaches only the
  // launcher, which passes it on once; and it ends when the launcher does.
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) std::_Exit(kExitRuntime);
  ::execve(self.c_str(), argv.data(), envp.data());
  std::_Exit(kExitRuntime);
}

// Waits for the workers; the first to fail ends the job (see launcher.h).
int supervise(std::vector<pid_t>& pids, double grace_seconds) {
  const int nproc = static_cast<int>(pids.size());
  auto rank_of = [&](pid_t pid) {
    for (int r = 0; r < nproc; ++r)
      if (pids[r] == pid) return r;
    return -1;
  };
  auto signal_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };

  // Polls (every 20 ms) rather than blocks, so that a signal is passed on at once.
  int running = nproc, code = kExitOk;
  bool failed = false, relayed = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    if (const int sig = g_signal.exchange(0)) {
      signal_all(sig);
      relayed = true;
    }
    if (std::chrono::steady_clock::now() >= deadline) signal_all(SIGKILL);
    // Every worker that ended since the last look; one killed by a signal first, since the
    // others' errors are usually its consequences.
    std::vector<std::pair<int, int>> ended;  // rank, status
    for (int status = 0;;) {
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      if (const int r = rank_of(pid); r >= 0) ended.emplace_back(r, status);
    }
    std::stable_partition(ended.begin(), ended.end(),
                          [](const auto& e) { return WIFSIGNALED(e.second); });
    for (const auto& [r, status] : ended) {
      const pid_t pid = pids[r];
      pids[r] = -1;
      --running;
      const auto [how, worker_code] = describe(status);
      if (worker_code == kExitOk || failed) continue;
      code = worker_code;
      failed = true;
      deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000));
      if (relayed && worker_code == kExitInterrupted) continue;  // stopping as asked
      std::string others;  // a worker that hangs is among these
      for (int o = 0; o < nproc; ++o)
        if (pids[o] > 0) others += (others.empty() ? "" : ", ") + std::to_string(o);
      std::fprintf(stderr, "[launch] rank %d (pid %d) %s; stopping the other workers%s\n", r,
                   static_cast<int>(pid), how.c_str(),
                   others.empty() ? "" : (" (still running: rank " + others + ")").c_str());
      signal_all(SIGTERM);
    }
    if (ended.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return code;
}

}  // namespace

std::vector<std::string> without_nproc(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nproc") {
      ++i;
    } else if (a.rfind("--nproc=", 0) != 0) {
      out.push_back(a);
    }
  }
  return out;
}

int launch_local(int nproc, const std::vector<std::string>& args, double grace_seconds) {
  // The store outlives every worker, so a dying rank 0 does not take the rendezvous with it.
  c10d::TCPStoreOptions so;
  so.port = 0;  // any free port
  so.isServer = true;
  so.waitWorkers = false;
  auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
  const std::string port = std::to_string(store->getPort());

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: waitpid returns to pass the signal on
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    pids.push_back(spawn(
        args, {"RANK=" + std::to_string(r), "LOCAL_RANK=" + std::to_string(r),
               "WORLD_SIZE=" + std::to_string(nproc), "LOCAL_WORLD_SIZE=" + std::to_string(nproc),
               "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + port, "TORCHELASTIC_USE_AGENT_STORE=True",
               "TORCHELASTIC_RESTART_COUNT=0"}));
  }
  return supervise(pids, grace_seconds);
}

}  // namespace coco::dist
