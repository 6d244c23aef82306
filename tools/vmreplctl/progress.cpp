#include "progress.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "format.h"

namespace vmreplctl {

namespace {

volatile sig_atomic_t g_interrupted = 0;

extern "C" void on_sigint(int) {
  if (g_interrupted) {
    // Second Ctrl-C: stop waiting for the safe point.
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
    return;
  }
  g_interrupted = 1;
}

std::string str(const Json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t u64(const Json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

int terminal_width() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 80;
}

std::string eta_text(const Json& j) {
  auto it = j.find("EtaSeconds");
  if (it == j.end() || !it->is_number_integer()) return {};
  const int64_t s = it->get<int64_t>();
  if (s < 0) return {};
  char buf[32];
  if (s < 3600)
    std::snprintf(buf, sizeof buf, "ETA %lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "ETA %lldh%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  return buf;
}

// "Name  [=====>    ]  42%  Running  sending  12.3 MiB/s  ETA 0:05", cut to the terminal.
std::string live_line(const Json& j, bool cancelling) {
  const uint64_t pct = std::min<uint64_t>(u64(j, "PercentComplete"), 100);
  constexpr int kBar = 24;
  const int fill = static_cast<int>(pct * kBar / 100);
  std::string bar = "[" + std::string(static_cast<size_t>(fill), '=');
  if (fill < kBar) bar += ">" + std::string(static_cast<size_t>(kBar - fill - 1), ' ');
  bar += "]";
  char pcts[8];
  std::snprintf(pcts, sizeof pcts, "%3llu%%", static_cast<unsigned long long>(pct));
  std::string line = str(j, "Name") + "  " + bar + " " + pcts + "  " + str(j, "JobStatus");
  if (const std::string phase = str(j, "Phase"); !phase.empty()) line += "  " + phase;
  if (const uint64_t rate = u64(j, "RateBytesPerSecond"); rate) line += "  " + human_bytes(rate) + "/s";
  if (const std::string eta = eta_text(j); !eta.empty()) line += "  " + eta;
  if (cancelling) line += "  (cancelling)";
  const size_t w = static_cast<size_t>(terminal_width() - 1);
  if (line.size() > w) line.resize(w);
  return line;
}

}  // namespace

ProgressMode choose_progress(bool json, bool quiet) {
  if (quiet) return ProgressMode::Off;
  if (isatty(STDERR_FILENO)) return ProgressMode::Live;
  return json ? ProgressMode::Off : ProgressMode::Lines;
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

Json wait_for_job(vmr_job* job, ProgressMode mode) {
  const int64_t tick_ms = mode == ProgressMode::Live ? 100 : 250;
  bool cancel_sent = false;
  bool live_shown = false;
  std::string last_key;
  Json props;
  for (;;) {
    const vmr_status w = vmr_job_wait(job, tick_ms);
    if (w != VMR_OK && w != VMR_TIMEOUT) throw Refused{w, vmr_last_error_message()};
    if (g_interrupted && !cancel_sent) {
      cancel_sent = true;
      vmr_job_cancel(job);  // 32775 when it just finished: nothing to do
      if (mode == ProgressMode::Lines) std::fprintf(stderr, "interrupted: cancelling the job\n");
    }
    vmr_instance* raw = nullptr;
    check(vmr_job_get(job, &raw));
    Instance inst(raw);
    props = to_json(inst.get());
    const bool final = w == VMR_OK;
    if (mode == ProgressMode::Live) {
      // \r + erase line: the line is rewritten in place.
      std::fprintf(stderr, "\r\033[K%s", live_line(props, cancel_sent).c_str());
      live_shown = true;
    } else if (mode == ProgressMode::Lines && !final) {
      const std::string key = str(props, "JobStatus") + "|" + str(props, "Phase") + "|" +
                              std::to_string(u64(props, "PercentComplete") / 25);
      if (key != last_key) {
        last_key = key;
        std::string line = str(props, "Name") + ": " + std::to_string(u64(props, "PercentComplete")) + "% " +
                           str(props, "JobStatus");
        if (const std::string phase = str(props, "Phase"); !phase.empty()) line += " " + phase;
        std::fprintf(stderr, "%s\n", line.c_str());
      }
    }
    if (final) break;
  }
  if (live_shown) std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  return props;
}

}  // namespace vmreplctl
