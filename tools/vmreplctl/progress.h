// Waiting for a job while showing its progress: a live line on a terminal (percent, phase,
// status, rate, ETA, rewritten in place on stderr), plain lines on stderr otherwise (one per
// change of state or phase, and per quarter of progress), nothing with --quiet or when --json
// goes to a non-terminal. SIGINT during the wait asks the job to cancel; a second one kills
// the tool.
#pragma once

#include "handles.h"

namespace vmreplctl {

enum class ProgressMode { Live, Lines, Off };

// Live when stderr is a terminal, else Lines (Off when `json` or `quiet`).
ProgressMode choose_progress(bool json, bool quiet);

// Waits until the job is final; returns its final properties (vmr_job_get).
Json wait_for_job(vmr_job* job, ProgressMode mode);

// Installs the SIGINT handler that turns Ctrl-C into a cancel of the job being waited on.
void install_interrupt_handler();

}  // namespace vmreplctl
