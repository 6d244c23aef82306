-- The module: version, constants tables, the JSON codec, the scheduler hook.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

describe("vmrepl module", function()
  it("reports the library and ABI versions", function()
    assert.are.equal("0.1.0", vmrepl.version())
    assert.are.equal(vmrepl.version(), vmrepl.VERSION)
    assert.is_true(math.type(vmrepl.abi_version()) == "integer")
    assert.is_true(vmrepl.abi_version() >= vmrepl.ABI_VERSION)
  end)

  it("has the model's status numbers with the library's names", function()
    local expected = {
      OK = 0, JobStarted = 4096, Failed = 32768, AccessDenied = 32769, NotSupported = 32770, Unknown = 32771,
      Timeout = 32772, InvalidParameter = 32773, SystemInUse = 32774, InvalidState = 32775,
      IncorrectDataType = 32776, SystemNotAvailable = 32777, OutOfMemory = 32778, FileNotFound = 32779,
    }
    local n = 0
    for name, number in pairs(vmrepl.Status) do
      n = n + 1
      assert.are.equal(expected[name], number, name)
      -- vmr_status_name(0) is the spec's "Completed" (with no error); the table says OK.
      assert.are.equal(number == 0 and "Completed" or name, vmrepl.status_name(number))
      assert.are.equal(name, vmrepl.Status[number]) -- reverse lookup
    end
    assert.are.equal(14, n)
  end)

  it("has the spec's enumerations", function()
    local function count(t)
      local n = 0
      for _ in pairs(t) do n = n + 1 end
      return n
    end
    assert.are.equal(22, count(vmrepl.ReplicationState))
    for k = 0, 21 do assert.is_string(vmrepl.ReplicationState[k]) end
    assert.are.equal(5, vmrepl.ReplicationState.Recovered)
    assert.are.equal(3, vmrepl.ReplicationState.Replicating)
    assert.are.equal(21, vmrepl.ReplicationState.FiredrillInProgress)
    assert.are.equal("Recovered", vmrepl.ReplicationState[5])
    assert.are.same({ None = 0, Primary = 1, Replica = 2, TestReplica = 3, ExtendedReplica = 4 },
      setmetatable(vmrepl.json_decode(vmrepl.json_encode(vmrepl.ReplicationMode)), nil))
    assert.are.equal(1, vmrepl.ReplicationHealth.Ok)
    assert.are.equal(3, vmrepl.ReplicationHealth.Critical)
    assert.are.equal(11, count(vmrepl.JobState))
    for k = 2, 12 do assert.is_string(vmrepl.JobState[k]) end
    assert.are.equal(7, vmrepl.JobState.Completed)
    assert.are.equal(10, vmrepl.JobState.Exception)
    assert.are.equal(36, count(vmrepl.JobType))
    for k = 90, 125 do assert.is_string(vmrepl.JobType[k]) end
    assert.are.equal(113, vmrepl.JobType.ConsistencyCheckerRun)
    assert.are.equal(7, vmrepl.RequestedState.Suspend)
    assert.are.equal(3, vmrepl.RequestedState.Replicating)
    assert.are.equal(2, vmrepl.EnabledState.Running)
    assert.are.equal(3, vmrepl.EnabledState.Off)
    assert.are.equal(vmrepl.EnabledState.Enabled, vmrepl.EnabledState.Running)
    assert.are.equal("Enabled", vmrepl.EnabledState[2]) -- the first name of an alias
    assert.are.equal(1, vmrepl.InitialReplicationType.Network)
    assert.are.equal(3, vmrepl.InitialReplicationType.Seeded)
    assert.are.equal(1, vmrepl.ReplicationType.Regular)
    assert.are.equal(2, vmrepl.AuthenticationType.Certificate)
    assert.are.equal(4, vmrepl.JobRequestedState.Terminate)
    assert.are.equal(10, vmrepl.CimType.String)
    assert.is_nil(vmrepl.JobState[99])
  end)

  it("raises for a misspelt constant instead of giving nil", function()
    local err = H.raises(function() return vmrepl.Status.Faild end)
    assert.matches("vmrepl.Status has no member 'Faild'", err, 1, true)
    err = H.raises(function() return vmrepl.ReplicationState.Replicated end)
    assert.matches("vmrepl.ReplicationState has no member", err, 1, true)
  end)

  describe("json_encode / json_decode", function()
    it("writes scalars, arrays and objects", function()
      assert.are.equal("true", vmrepl.json_encode(true))
      assert.are.equal("42", vmrepl.json_encode(42))
      assert.are.equal("30", vmrepl.json_encode(30.0)) -- an integral float is an integer
      assert.are.equal("0.5", vmrepl.json_encode(0.5))
      assert.are.equal('"a\\"b\\\\c\\n\\u0001"', vmrepl.json_encode('a"b\\c\n\1'))
      assert.are.equal("[1,2,3]", vmrepl.json_encode({ 1, 2, 3 }))
      assert.are.equal('["a","b"]', vmrepl.json_encode({ "a", "b" }))
      assert.are.equal("{}", vmrepl.json_encode({}))
      assert.are.equal('{"k":[true,false]}', vmrepl.json_encode({ k = { true, false } }))
      assert.are.equal("[1,null,3]", vmrepl.json_encode({ 1, vmrepl.null, 3 }))
      assert.are.equal("null", vmrepl.json_encode(nil))
    end)

    it("round-trips nested values", function()
      local v = {
        RecoveryConnectionPoint = "hv-b", RecoveryServerPortNumber = 443, CompressionEnabled = true,
        IncludedDisks = { "d0", "d1" }, hosts = { ["hv-b"] = "127.0.0.1" }, ratio = 0.25, neg = -7,
        text = "é ✓ \t",
      }
      assert.are.same(v, vmrepl.json_decode(vmrepl.json_encode(v)))
    end)

    it("decodes escapes, big numbers and nulls", function()
      assert.are.equal("é😀", vmrepl.json_decode('"\\u00e9\\ud83d\\ude00"'))
      assert.are.equal(18446744073709551615.0, vmrepl.json_decode("18446744073709551615"))
      assert.are.equal(math.mininteger, vmrepl.json_decode("-9223372036854775808"))
      assert.are.equal(1.5e300, vmrepl.json_decode("1.5e300"))
      assert.are.same({ a = 1 }, vmrepl.json_decode('{"a": 1, "b": null}'))
      local arr = vmrepl.json_decode("[null, 2]")
      assert.are.equal(vmrepl.null, arr[1])
      assert.are.equal(2, #arr)
      assert.is_nil(vmrepl.json_decode("null"))
    end)

    it("raises on what JSON cannot hold", function()
      assert.matches("cannot be written as JSON", H.raises(vmrepl.json_encode, { f = print }))
      assert.matches("at f", H.raises(vmrepl.json_encode, { f = print }), 1, true)
      assert.matches("array", H.raises(vmrepl.json_encode, { 1, 2, x = 3 }))
      assert.matches("array", H.raises(vmrepl.json_encode, { [1] = 1, [3] = 3 }))
      local cycle = {}
      cycle.self = cycle
      assert.matches("nested too deeply", H.raises(vmrepl.json_encode, cycle))
      assert.matches("inf and nan", H.raises(vmrepl.json_encode, { x = math.huge }))
      assert.matches("inf and nan", H.raises(vmrepl.json_encode, 0 / 0))
    end)

    it("raises on malformed text", function()
      for _, bad in ipairs({ "", "{", "[1,", '{"a" 1}', '"abc', "tru", "01x", "[1] 2", '"\\q"', "{1:2}" }) do
        assert.matches("invalid JSON", H.raises(vmrepl.json_decode, bad), 1, true)
      end
      assert.matches("nested too deeply", H.raises(vmrepl.json_decode, string.rep("[", 100) .. string.rep("]", 100)))
    end)
  end)

  describe("set_scheduler", function()
    after_each(function()
      vmrepl.set_scheduler(nil)
      package.loaded["vmrepl.luv"] = nil
    end)

    it("takes a table of functions or nil and returns the previous one", function()
      local s = { wait = function() end, closing = function() end }
      vmrepl.set_scheduler(nil)
      assert.is_nil(vmrepl.set_scheduler(s))
      assert.are.equal(s, vmrepl.set_scheduler(nil))
      assert.is_nil(vmrepl.set_scheduler(nil))
    end)

    it("rejects anything else", function()
      assert.matches("table expected", H.raises(vmrepl.set_scheduler, 42))
      assert.matches("field 'wait' must be a function", H.raises(vmrepl.set_scheduler, { wait = 1 }))
      assert.matches("field 'closing' must be a function", H.raises(vmrepl.set_scheduler, { closing = "x" }))
    end)

    it("is used by job:wait in a coroutine, and its closing hook by close()", function()
      local svc, dir = H.service()
      local vm = assert(svc:define_system { name = "s1", disks = { 1 << 20 } })
      local seen = {}
      vmrepl.set_scheduler({
        wait = function(job, timeout)
          seen[#seen + 1] = timeout
          if timeout == 5 then return "from", "the", "scheduler" end
          -- returning nothing lets the wait block as usual
        end,
        closing = function(s) seen.closing = s end,
      })
      local job = assert(svc:compute_digest(vm))
      local r = table.pack(coroutine.wrap(function() return job:wait(5) end)())
      assert.are.same({ "from", "the", "scheduler", n = 3 }, r)
      assert.is_true(coroutine.wrap(function() return job:wait(30) end)())
      assert.is_true(job:wait()) -- main thread: never the scheduler
      assert.is_true(coroutine.wrap(function() return job:wait(0) end)()) -- 0: a poll, never the scheduler
      assert.are.same({ 5, 30 }, { seen[1], seen[2] })
      svc:close()
      assert.are.equal(svc, seen.closing)
      H.rmrf(dir)
    end)

    it("a failing closing hook still closes the service, then raises", function()
      local svc, dir = H.service()
      vmrepl.set_scheduler({ closing = function() error("hook failed") end })
      assert.matches("hook failed", H.raises(svc.close, svc))
      assert.is_true(svc:closed())
      svc:close()
      H.rmrf(dir)
    end)
  end)
end)
