-- vmrepl.luv: jobs driven by coroutines of a luv loop; job:wait() yields instead of blocking.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

local has_luv, uv = pcall(require, "luv")

if not has_luv then
  describe("vmrepl.luv", function()
    pending("lua-luv is not installed (apt-get install lua-luv)")
  end)
  return
end

local vl = require("vmrepl.luv")
local MIB = 1 << 20

local function index_of(list, value)
  for k, v in ipairs(list) do
    if v == value then return k end
  end
end

describe("vmrepl.luv", function()
  local svc, dir
  before_each(function()
    vl.install()
    svc, dir = H.service({ host_name = "hv-t", hash = "sha256" })
  end)
  after_each(function()
    svc:close()
    H.rmrf(dir)
    assert.are.same({ 0, 0 }, { vl.pending() })
  end)
  teardown(function() vl.uninstall() end)

  local function big_vm(name, mib, byte)
    local vm = assert(svc:define_system { name = name, disks = { mib * MIB } })
    H.fill(assert(svc:disk_path(vm)), mib, byte)
    return vm
  end

  it("runs two digests at once, each in a coroutine", function()
    local vms = { big_vm("a", 128, 1), big_vm("b", 128, 2) }
    local log, results, progress = {}, {}, { 0, 0 }
    for k, vm in ipairs(vms) do
      vl.spawn(function()
        local job = assert(svc:compute_digest(vm))
        job:on_progress(function(p)
          progress[k] = progress[k] + 1
          assert.is_number(p.percent)
        end)
        log[#log + 1] = "start" .. k
        local ok, msg, code = job:wait(120)
        assert(ok, msg, code)
        log[#log + 1] = "done" .. k
        results[k] = job:properties().MerkleRoot
      end)
    end
    vl.run()
    -- The second started while the first was waiting: waiting yielded.
    assert.is_true(index_of(log, "start2") < index_of(log, "done1"))
    assert.are.equal(4, #log)
    assert.is_true(progress[1] >= 1 and progress[2] >= 1)
    -- Same results as blocking digests.
    for k, vm in ipairs(vms) do
      local job = H.ok(svc:compute_digest(vm))
      assert.are.equal(job:properties().MerkleRoot, results[k])
    end
    assert.are_not.equal(results[1], results[2])
  end)

  it("runs two replications between two services at once", function()
    local P = H.pair()
    finally(function() P.close() end)
    -- Engine bug (see replication_spec "concurrent first relationships"): the first two
    -- relationships into a storage location must not be created at once. One made first
    -- opens the location.
    H.ok(P.a:create_replication_relationship(assert(P.a:define_system { name = "warm", disks = { MIB } }),
      P.settings()))
    local log, equal = {}, {}
    for k = 1, 2 do
      vl.spawn(function()
        local vm = assert(P.a:define_system { name = "vm" .. k, disks = { 32 * MIB } })
        local disk = assert(P.a:disk_path(vm))
        H.write_at(disk, k * MIB, H.bytes(k, 16 * H.BLOCK))
        log[#log + 1] = "create" .. k
        assert(assert(P.a:create_replication_relationship(vm, P.settings())):wait(120))
        log[#log + 1] = "start" .. k
        assert(assert(P.a:start_replication(vm, vmrepl.InitialReplicationType.Network)):wait(120))
        for c = 1, 3 do
          H.write_at(disk, (k * 8 + c) * MIB, H.bytes(10 * k + c, 4 * H.BLOCK))
          assert(assert(P.a:replicate_now(vm)):wait(120))
        end
        log[#log + 1] = "done" .. k
        equal[k] = H.read(disk) == H.read(P.replica_image(vm))
        assert.are.equal(4, #assert(P.b:list_recovery_points(vm.Name)))
      end)
    end
    vl.run()
    assert.is_true(index_of(log, "create2") < index_of(log, "start1"))
    assert.are.same({ true, true }, equal)
  end)

  it("a wait with a timeout yields, then gives Timeout (32772) while the job runs", function()
    local vm = big_vm("big", 256, 5)
    local ticks, r = 0, nil
    local done = false
    vl.spawn(function()
      while not done do
        ticks = ticks + 1
        vl.sleep(0.001)
      end
    end)
    vl.spawn(function()
      local job = assert(svc:compute_digest(vm))
      r = table.pack(job:wait(0.02))
      assert.is_true(job:wait())
      done = true
    end)
    vl.run()
    assert.is_nil(r[1])
    assert.matches("still %a+ after", r[2]) -- New or Running
    assert.are.equal(vmrepl.Status.Timeout, r[3])
    assert.is_true(ticks > 1) -- the other coroutine ran while this one waited
  end)

  it("waits block as usual in the main thread and when no loop runs", function()
    local vm = assert(svc:define_system { name = "small", disks = { 4 * MIB } })
    assert.is_true(assert(svc:compute_digest(vm)):wait())
    assert.is_true(coroutine.wrap(function() return assert(svc:compute_digest(vm)):wait() end)())
    assert.is_nil(uv.loop_mode())
  end)

  it("waits one job after another in one coroutine (the poll handle comes and goes)", function()
    local vm = big_vm("big", 32, 9)
    local n = 0
    vl.spawn(function()
      for _ = 1, 5 do
        assert(assert(svc:compute_digest(vm)):wait(60))
        n = n + 1
        assert.are.same({ 0, 0 }, { vl.pending() })
      end
    end)
    vl.run()
    assert.are.equal(5, n)
  end)

  it("closing the service resumes its waiting coroutines with the jobs' outcome", function()
    local vm = big_vm("big", 256, 4)
    local r, state
    vl.spawn(function()
      local job = assert(svc:compute_digest(vm))
      r = table.pack(job:wait())
      state = job:state()
    end)
    vl.spawn(function()
      vl.sleep(0.01)
      assert.are.same({ 1, 1 }, { vl.pending() })
      svc:close()
    end)
    vl.run()
    assert.are.equal(3, r.n)
    assert.is_nil(r[1])
    assert.are.equal(32768, r[3])
    assert.are.equal(vmrepl.JobState.Terminated, state)
  end)

  it("a job closed while its coroutine waits: the wait raises in that coroutine", function()
    local vm = big_vm("big", 128, 8)
    local job
    vl.spawn(function()
      job = assert(svc:compute_digest(vm))
      job:wait()
    end)
    vl.spawn(function()
      vl.sleep(0.005)
      job:close()
    end)
    local ok, err = pcall(vl.run)
    assert.is_false(ok)
    assert.matches("vmrepl.Job is closed", err, 1, true)
    vl.run()
  end)

  it("an error in a coroutine stops the loop and vl.run re-raises it", function()
    vl.spawn(function() error("boom in a coroutine") end)
    local ok, err = pcall(vl.run)
    assert.is_false(ok)
    assert.matches("boom in a coroutine", err)
    vl.run() -- nothing left; no stale error
  end)

  it("an error in an on_progress callback reaches vl.run; the loop can go on", function()
    local vm = big_vm("big", 64, 6)
    local failed, finished = false, false
    vl.spawn(function()
      local job = assert(svc:compute_digest(vm))
      job:on_progress(function()
        if not failed then
          failed = true
          error("boom in a callback")
        end
      end)
      assert(job:wait(60))
      finished = true
    end)
    local ok, err = pcall(vl.run)
    assert.is_false(ok)
    assert.matches("boom in a callback", err)
    vl.run() -- the waiting coroutine still completes
    assert.is_true(finished)
  end)
end)
