-- Jobs: wait, state, progress, properties, cancel, id, get_job/list_jobs, dispatch + on_progress.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

local MIB = 1 << 20

describe("jobs", function()
  local svc, dir, vm
  before_each(function()
    svc, dir = H.service({ host_name = "hv-t", hash = "sha256" })
    vm = assert(svc:define_system { name = "web01", disks = { 64 * MIB } })
  end)
  after_each(function()
    svc:close()
    H.rmrf(dir)
  end)

  -- A VM whose digest takes a while (sha256 over `mib` MiB of data).
  local function big_vm(name, mib)
    local v = assert(svc:define_system { name = name, disks = { mib * MIB } })
    H.fill(assert(svc:disk_path(v)), mib, 7)
    return v
  end

  it("compute_digest: wait, state, done, error_code, properties, progress, id, name, job_type", function()
    H.write_at(svc:disk_path(vm), 3 * MIB, H.bytes(1, 5 * H.BLOCK))
    local job = assert(svc:compute_digest(vm))
    assert.is_true(job:wait(60))
    assert.is_true(job:wait()) -- again: still the same outcome
    assert.are.equal(vmrepl.JobState.Completed, job:state())
    assert.is_true(job:done())
    assert.are.equal(0, job:error_code())
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", job:id())
    assert.matches("ComputeDigest", job:name())
    assert.are.equal(vmrepl.JobType.ConsistencyCheckerRun, job:job_type())
    assert.are.equal(svc, job:service())
    local p = job:properties()
    assert.are.equal("Msvm_ConcreteJob", p:class_name())
    assert.are.equal(job:id(), p.InstanceID)
    assert.are.equal(7, p.JobState)
    assert.are.equal(100, p.PercentComplete)
    assert.matches("^%x+$", p.MerkleRoot)
    assert.are.equal(1, #p.DiskMerkleRoots)
    assert.are.equal(64 * MIB // H.BLOCK, p.BlockCount)
    assert.are.equal(64 * MIB // H.BLOCK - 5, p.ZeroBlocks)
    assert.are.equal("sha256", p.HashAlgorithm)
    local pr = job:progress()
    assert.are.equal(100, pr.percent)
    assert.are.equal(64 * MIB, pr.bytes_total)
    assert.are.equal(pr.bytes_total, pr.bytes_done)
    assert.is_string(pr.phase)
    assert.is_number(pr.rate)
    assert.matches("^vmrepl.Job %(.*ComputeDigest.*JobState 7%)$", tostring(job))
  end)

  it("digests equal disks alike and a changed disk differently", function()
    local other = assert(svc:define_system { name = "db01", disks = { 64 * MIB } })
    local function root(v)
      local job = H.ok(svc:compute_digest(v))
      return job:properties().MerkleRoot
    end
    assert.are.equal(root(vm), root(other))
    H.write_at(svc:disk_path(other), 0, "x")
    assert.are_not.equal(root(vm), root(other))
  end)

  it("wait(0) and short timeouts give Timeout (32772) while the job runs", function()
    local v = big_vm("big", 256)
    local job = assert(svc:compute_digest(v))
    local ok, msg, code = job:wait(0)
    assert.is_nil(ok)
    assert.matches("still %a+ after", msg) -- New or Running
    assert.are.equal(vmrepl.Status.Timeout, code)
    assert.is_false(job:done())
    assert.is_true(job:wait())
  end)

  it("cancel ends a running job Terminated; wait returns its ErrorCode", function()
    local v = big_vm("big", 256)
    local job = assert(svc:compute_digest(v))
    assert.is_true(job:cancel())
    local ok, msg, code = job:wait(60)
    assert.is_nil(ok)
    assert.matches("cancelled", msg)
    assert.are.equal(vmrepl.Status.Failed, code)
    assert.are.equal(vmrepl.JobState.Terminated, job:state())
    assert.are.equal(32768, job:error_code())
    -- Cancelling a final job is a wrong state.
    ok, msg, code = job:cancel()
    assert.is_nil(ok)
    assert.matches("already ended", msg)
    assert.are.equal(vmrepl.Status.InvalidState, code)
  end)

  it("get_job finds a job by InstanceID; list_jobs lists them", function()
    local job = H.ok(svc:compute_digest(vm))
    local again = assert(svc:get_job(job:id()))
    assert.are_not.equal(job, again)
    assert.are.equal(job:id(), again:id())
    assert.is_true(again:wait())
    assert.are.equal(job:properties().MerkleRoot, again:properties().MerkleRoot)
    local found = false
    for _, j in ipairs(svc:list_jobs()) do
      assert.are.equal("Msvm_ConcreteJob", j:class_name())
      if j.InstanceID == job:id() then found = j.JobState == 7 end
    end
    assert.is_true(found)
    local ok, msg, code = svc:get_job("11111111-2222-3333-4444-555555555555")
    assert.is_nil(ok)
    assert.matches("no job", msg)
    assert.are.equal(vmrepl.Status.FileNotFound, code)
    assert.are.equal(vmrepl.Status.InvalidParameter, select(3, svc:get_job("not-a-guid")))
  end)

  it("digest of an unknown VM: FileNotFound at once", function()
    local ok, msg, code = svc:compute_digest("nope")
    assert.is_nil(ok)
    assert.matches("no virtual machine", msg)
    assert.are.equal(32779, code)
  end)

  it("dispatch runs on_progress callbacks and returns the changed jobs", function()
    local v = big_vm("big", 128)
    local job = assert(svc:compute_digest(v))
    local calls, last = 0, nil
    job:on_progress(function(p, j)
      calls = calls + 1
      last = p
      assert.are.equal(job, j)
    end)
    local seen = false
    repeat
      job:wait(0.01) -- let events accumulate
      for _, j in ipairs(assert(svc:dispatch())) do seen = seen or rawequal(j, job) end
    until job:done()
    job:wait()
    for _, j in ipairs(svc:dispatch()) do seen = seen or rawequal(j, job) end -- the final event
    assert.is_true(seen)
    assert.is_true(calls >= 1)
    assert.are.equal(100, last.percent)
    assert.are.equal(128 * MIB, last.bytes_done)
    -- nil removes the callback
    job:on_progress(nil)
    H.ok(svc:compute_digest(vm))
  end)

  it("a closed job raises cleanly; the service is unaffected", function()
    local job = H.ok(svc:compute_digest(vm))
    local id = job:id()
    job:close()
    job:close()
    assert.are.equal("vmrepl.Job (closed)", tostring(job))
    for _, m in ipairs({ "wait", "state", "done", "error_code", "progress", "properties", "cancel", "id", "name",
      "job_type" }) do
      assert.matches("vmrepl.Job is closed", H.raises(job[m], job), 1, true)
    end
    assert.are.equal(svc, job:service())
    assert.is_true(assert(svc:get_job(id)):wait())
  end)

  it("jobs stay readable after their service is closed (close stops running jobs)", function()
    local v = big_vm("big", 256)
    local running = assert(svc:compute_digest(v))
    local done = H.ok(svc:compute_digest(vm))
    svc:close()
    assert.is_true(done:wait())
    assert.are.equal(7, done:state())
    running:wait()
    assert.is_true(running:done())
    assert.are.equal(running:id(), running:properties().InstanceID)
    assert.matches("vmrepl.Service is closed", H.raises(function() return running:service():info() end), 1, true)
  end)
end)
