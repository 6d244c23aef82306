#!/usr/bin/env lua5.4
--[[ A planned disaster-recovery runbook between two in-process services on 127.0.0.1, from Lua.

  hv-a replicates web01 to hv-b. Then, as an operator would on the day of a planned move:

    1. prepare the planned failover on hv-a (web01 off; a final cycle; ReplicationState 4),
    2. fail over on hv-b (the latest point becomes web01's disk there; state 5),
    3. reverse the replication on hv-b: hv-a becomes hv-b's replica and gets only the blocks
       either side changed since their common point,
    4. start web01 on hv-b (it runs and writes; a cycle carries the writes to hv-a),
    5.-8. fail back the same way (prepare on hv-b, fail over on hv-a, reverse on hv-a, start).

  Each of hv-a and hv-b is a recovery server admitting the other: a reverse makes the old
  primary a replica. Every step prints its job's final state and both sides' ReplicationMode /
  ReplicationState; each reverse prints what it sent against the disk's size.

    LUA_CPATH="build/bindings/lua/lua/?.so;;" lua5.4 examples/lua/planned.lua [SCRATCH_DIR] [--size-mib N]

  SCRATCH_DIR defaults to a fresh temporary directory, removed at the end. Exit status 0 when,
  at the end, hv-b's replica equals hv-a's disk byte for byte.
]]
local vmrepl = require("vmrepl")

local MIB, BLOCK = 1 << 20, 65536
local scratch, size_mib = nil, 64
do
  local i = 1
  while i <= #arg do
    if arg[i] == "--size-mib" then
      size_mib = assert(math.tointeger(tonumber(arg[i + 1])), "--size-mib needs a number")
      assert(size_mib >= 8, "--size-mib must be at least 8")
      i = i + 1
    else
      scratch = arg[i]
    end
    i = i + 1
  end
end
local temporary = scratch == nil
if temporary then
  scratch = os.tmpname()
  os.remove(scratch)
end
assert(os.execute("mkdir -p '" .. scratch .. "'"))
local size = size_mib * MIB

-- Every call returns its result, or nil, message, code: stop at the first failure.
local function check(what, ok, msg, code)
  if not ok then
    io.stderr:write(string.format("%s failed: %s (%s, %d)\n", what, msg, vmrepl.Status[code] or "?", code))
    os.exit(1, true) -- closes the state: the <close> services are closed on the way out
  end
  return ok
end

local function finish(what, job, msg, code)
  check(what, job, msg, code)
  check(what, job:wait(600))
  return job
end

local function write_at(path, offset, data)
  local f = assert(io.open(path, "r+b"))
  f:seek("set", offset)
  f:write(data)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- `n` bytes that depend on `seed`.
local function bytes(seed, n)
  local parts, x = {}, seed
  for k = 1, 64 do
    x = (x * 1103515245 + 12345) % 4294967296
    parts[k] = string.pack("<I4", x)
  end
  local chunk = table.concat(parts)
  return string.rep(chunk, n // #chunk) .. chunk:sub(1, n % #chunk)
end

local status = 0
do
  local b <close> = check("open", vmrepl.open("local:" .. scratch .. "/hv-b", {
    host_name = "hv-b", listen = "127.0.0.1:0", hosts = { ["hv-a"] = "127.0.0.1" },
  }))
  local a <close> = check("open", vmrepl.open("local:" .. scratch .. "/hv-a", {
    host_name = "hv-a", listen = "127.0.0.1:0", hosts = { ["hv-b"] = "127.0.0.1" },
  }))
  local hosts = { ["hv-a"] = a, ["hv-b"] = b }
  -- Both are recovery servers, each admitting the other.
  for _, p in ipairs({ { b, "hv-a" }, { a, "hv-b" } }) do
    finish("ModifyServiceSettings", p[1]:modify_service_settings { RecoveryServerEnabled = true, AllowedAuthenticationType = 1 })
    finish("AddAuthorizationEntry", p[1]:add_authorization_entry {
      AllowedPrimaryHostSystem = p[2], TrustGroup = "DEFAULT", ReplicaStorageLocation = scratch .. "/replicas-of-" .. p[2],
    })
  end
  local ports = { ["hv-a"] = a:info().ListenPort, ["hv-b"] = b:info().ListenPort }
  print(string.format("hv-a listens on 127.0.0.1:%d, hv-b on 127.0.0.1:%d", ports["hv-a"], ports["hv-b"]))

  local vm = check("DefineSystem", a:define_system { name = "web01", disks = { size } })
  local disk = check("disk_path", a:disk_path(vm))
  for offset = 0, size - 1, 4 * MIB do write_at(disk, offset, bytes(offset + 1, MIB)) end
  print(string.format("defined %s (%s) on hv-a, %d MiB disk", vm.ElementName, vm.Name, size_mib))

  local function settings(to)
    return { RecoveryConnectionPoint = to, RecoveryServerPortNumber = ports[to], AuthenticationType = 1,
      ReplicationInterval = 300, RecoveryHistory = 3, CompressionEnabled = true }
  end
  finish("CreateReplicationRelationship", a:create_replication_relationship(vm, settings("hv-b")))
  local ir = finish("StartReplication", a:start_replication(vm, vmrepl.InitialReplicationType.Network)):properties()
  print(string.format("initial replication hv-a -> hv-b: %d blocks", ir.BlocksSent))

  local function states()
    local out = {}
    for _, name in ipairs({ "hv-a", "hv-b" }) do
      local s = check("GetSystem", hosts[name]:get_system(vm.Name))
      out[#out + 1] = string.format("%s mode %d state %d (%s)", name, s.ReplicationMode, s.ReplicationState,
        vmrepl.ReplicationState[s.ReplicationState])
    end
    return table.concat(out, ", ")
  end

  -- Waits for a step's job (or takes `true`: done at once) and prints the outcome.
  local n = 0
  local function step(what, job, msg, code)
    n = n + 1
    local outcome = "done at once"
    if job ~= true then
      finish(what, job, msg, code)
      outcome = string.format("JobState %d (%s)", job:state(), vmrepl.JobState[job:state()])
    end
    print(string.format("%d. %s: %s; %s", n, what, outcome, states()))
    return job
  end

  -- One planned move from host `old` to host `new`.
  local function fail_over(old, new, seed)
    local o, nw = hosts[old], hosts[new]
    check("RequestStateChange", o:request_state_change(vm.Name, vmrepl.EnabledState.Off))
    step("prepare planned failover on " .. old,
      o:request_replication_state_change(vm.Name, vmrepl.RequestedState.SyncedReplicationComplete))
    step("fail over on " .. new, nw:initiate_failover(vm.Name))
    -- The new primary's workload changes a few blocks before the reverse.
    local ndisk = check("disk_path", nw:disk_path(vm.Name))
    for k = 0, 3 do write_at(ndisk, ((seed * 7 + k * 131) % (size // BLOCK)) * BLOCK + 100, bytes(seed * 10 + k, 3000)) end
    local job = step(string.format("reverse replication on %s -> %s", new, old),
      nw:reverse_replication_relationship(vm.Name, settings(old)))
    local r = job:properties()
    print(string.format("   reverse sent %d blocks, %d data bytes (%d bytes on the wire) of a %d-byte disk (%.2f%%); "
      .. "changes found by %s", r.BlocksSent, r.DataBytesSent, r.WireBytesSent, size, 100 * r.DataBytesSent / size,
      r.ChangeSource))
    step(string.format("start %s on %s", vm.ElementName, new), nw:request_state_change(vm.Name, vmrepl.EnabledState.Running))
    write_at(ndisk, size // 2, bytes(seed * 100, BLOCK))
    local c = finish("ReplicateNow", nw:replicate_now(vm.Name)):properties()
    print(string.format("   cycle %s -> %s: %d blocks", new, old, c.BlocksSent))
  end

  fail_over("hv-a", "hv-b", 1)
  fail_over("hv-b", "hv-a", 2)

  local image = check("GetSystem", b:get_system(vm.Name)).Folder .. "/replica/disk0.img"
  if read(image) == read(disk) then
    print("failed back: hv-a is the primary again and hv-b's replica equals its disk")
  else
    io.stderr:write("hv-b's replica DIFFERS from hv-a's disk\n")
    status = 1
  end
end -- both services close here (<close>)

if temporary then os.execute("rm -rf '" .. scratch .. "'") end
os.exit(status)
