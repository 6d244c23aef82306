--- vmrepl.luv: drive vmrepl jobs from a luv (libuv) event loop with coroutines.
--
--   local vmrepl = require("vmrepl")
--   local vl = require("vmrepl.luv")      -- installs the scheduler (vmrepl.set_scheduler)
--   vl.spawn(function() assert(svc:compute_digest(vm1):wait()) end)
--   vl.spawn(function() assert(svc:compute_digest(vm2):wait()) end)
--   vl.run()                              -- uv.run(); re-raises a coroutine's error
--
-- Once this module is loaded, job:wait(timeout) called from a coroutine while the luv loop is
-- running yields instead of blocking: the coroutine is resumed from the loop when the job is
-- final (or the timeout passed), and wait returns what it always returns (true, or nil,
-- message, code). Everywhere else (the main thread, or no running loop) wait blocks as usual.
--
-- How: one luv poll handle per service with waiting coroutines watches svc:fd(); when it is
-- readable, svc:dispatch() runs the jobs' on_progress callbacks and the coroutines whose jobs
-- are final are resumed. The poll handle is closed as soon as no coroutine waits on that
-- service, so uv.run() returns when the work is done. svc:close() closes the handle first and
-- resumes the service's waiters on the next loop iteration (their jobs then ended Terminated).
--
-- Errors raised by a coroutine resumed from the loop (or by an on_progress callback) stop the
-- loop and are re-raised by vl.run(); a luv callback never raises (luv would exit the process).
-- Do not call svc:dispatch() yourself on a service while coroutines wait on it here.
local vmrepl = require("vmrepl")
local uv = require("luv")

local M = {}

local watches = {} -- [service] = {svc, poll, waiters = {[entry] = true}, n, closed}
local errors = {}

local function report(err)
  errors[#errors + 1] = err
  uv.stop()
end

local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then report(debug.traceback(co, tostring(err))) end
end

local function unwatch(w)
  if w.closed then return end
  w.closed = true
  if watches[w.svc] == w then watches[w.svc] = nil end
  if not w.poll:is_closing() then
    w.poll:stop()
    w.poll:close()
  end
end

local function wake(w, entry, why)
  if entry.woken then return end
  entry.woken = true
  if w.waiters[entry] then
    w.waiters[entry] = nil
    w.n = w.n - 1
  end
  if entry.timer then
    entry.timer:stop()
    entry.timer:close()
    entry.timer = nil
  end
  if w.n == 0 then unwatch(w) end
  resume(entry.co, why)
end

-- The service's descriptor is readable: dispatch, then resume the waiters whose job is final
-- (every waiter is checked, not only the changed jobs, so no final state is ever missed).
local function on_readable(w)
  if w.closed or w.svc:closed() then return end
  local ok, err = pcall(function()
    local changed, msg = w.svc:dispatch()
    if not changed then error("vmrepl.luv: dispatch failed: " .. tostring(msg), 0) end
  end)
  if not ok then report(err) end
  local ready = {}
  for entry in pairs(w.waiters) do
    -- A job closed meanwhile raises: wake its coroutine, whose wait then raises there.
    local alive, done = pcall(entry.job.done, entry.job)
    if done or not alive then ready[#ready + 1] = entry end
  end
  for _, entry in ipairs(ready) do wake(w, entry, "done") end
end

local function watch(svc)
  local w = watches[svc]
  if w then return w end
  w = { svc = svc, waiters = {}, n = 0, closed = false }
  w.poll = assert(uv.new_poll(svc:fd()))
  w.poll:start("r", function(err)
    if err then
      report("vmrepl.luv: polling the service failed: " .. tostring(err))
      return
    end
    on_readable(w)
  end)
  watches[svc] = w
  return w
end

-- The scheduler's wait: called by job:wait(timeout) in a coroutine that can yield. Returning
-- nothing lets job:wait block (not under a running loop).
local function wait(job, timeout)
  if not uv.loop_mode() then return end
  local co, main = coroutine.running()
  if main then return end
  if job:done() then return job:wait(0) end
  local svc = job:service()
  if svc:closed() then return end -- closing stopped its jobs: the blocking wait is short
  local w = watch(svc)
  local entry = { co = co, job = job }
  w.waiters[entry] = true
  w.n = w.n + 1
  if timeout and timeout ~= math.huge then
    entry.timer = uv.new_timer()
    entry.timer:start(math.ceil(timeout * 1000), 0, function() wake(w, entry, "timeout") end)
  end
  -- The job was not final above, so its final event is still to come through the descriptor
  -- (job events are registered when the job handle is made).
  repeat
    coroutine.yield()
  until entry.woken
  return job:wait(0)
end

-- The scheduler's closing hook: svc:close() is about to release the service (and its fd).
local function closing(svc)
  local w = watches[svc]
  if not w then return end
  unwatch(w)
  local entries = {}
  for entry in pairs(w.waiters) do entries[#entries + 1] = entry end
  if #entries == 0 then return end
  -- Resume after close() has returned: the jobs are final by then.
  local t = uv.new_timer()
  t:start(0, 0, function()
    t:close()
    for _, entry in ipairs(entries) do wake(w, entry, "closed") end
  end)
end

--- Installs the scheduler (done when the module is loaded).
function M.install()
  vmrepl.set_scheduler({ wait = wait, closing = closing })
end

--- Removes the scheduler: job:wait blocks everywhere again.
function M.uninstall()
  vmrepl.set_scheduler(nil)
end

--- Starts fn(...) in a new coroutine from the loop (on its next iteration); returns the
-- coroutine. An error it raises stops the loop and is re-raised by M.run().
function M.spawn(fn, ...)
  assert(type(fn) == "function", "vmrepl.luv.spawn: a function is needed")
  local co = coroutine.create(fn)
  local args = table.pack(...)
  local t = uv.new_timer()
  t:start(0, 0, function()
    t:close()
    resume(co, table.unpack(args, 1, args.n))
  end)
  return co
end

--- Suspends the calling coroutine for `seconds` while the loop runs.
function M.sleep(seconds)
  local co, main = coroutine.running()
  assert(not main, "vmrepl.luv.sleep: call it from a coroutine")
  local t = uv.new_timer()
  local done = false
  t:start(math.ceil(seconds * 1000), 0, function()
    t:close()
    done = true
    resume(co)
  end)
  repeat
    coroutine.yield()
  until done
end

--- uv.run(mode), then re-raises the first error of a coroutine resumed from the loop.
function M.run(mode)
  local r = uv.run(mode)
  if #errors > 0 then
    local e = errors[1]
    errors = {}
    error(e, 0)
  end
  return r
end

--- Coroutines waiting on jobs here, and services watched (for tests and diagnostics).
function M.pending()
  local waiters, services = 0, 0
  for _, w in pairs(watches) do
    services = services + 1
    waiters = waiters + w.n
  end
  return waiters, services
end

M.install()
return M
