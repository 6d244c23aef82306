#!/usr/bin/env lua5.4
--[[ An unplanned disaster-recovery runbook between two in-process services on 127.0.0.1, from Lua.

  hv-a replicates db01 to hv-b, a few cycles. Then hv-a is lost without warning (its service is
  closed; the writes made since the last cycle never reached hv-b), and the operator:

    1. lists db01's recovery points on hv-b and fails over to the latest one (ReplicationState 5),
       then checks the failed-over disk against the point's Merkle roots (ComputeDigest),
    2. commits the failover on hv-b (state 6; the other recovery points are dropped),
    3. starts db01 on hv-b, whose workload writes,
    -- hv-a comes back (the service is opened again on the same host root) --
    4. makes hv-a's stale db01 a replica waiting for its initial replication (mode 2, state 2),
    5. reverses the replication on hv-b towards hv-a, verifying every block (verify = "full"):
       only what differs is sent, including hv-a's writes that were never replicated,
    6. starts the replication on hv-b (both sides state 3),
    7. runs one more cycle hv-b -> hv-a.

  Each of hv-a and hv-b is a recovery server admitting the other. Every step prints its job's
  final state and both sides' ReplicationMode / ReplicationState.

    LUA_CPATH="build/bindings/lua/lua/?.so;;" lua5.4 examples/lua/unplanned.lua [SCRATCH_DIR] [--size-mib N]

  SCRATCH_DIR defaults to a fresh temporary directory, removed at the end. Exit status 0 when,
  at the end, hv-a's replica equals hv-b's disk byte for byte.
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

-- A few blocks of a disk changed (a workload).
local function scribble(path, seed)
  for k = 0, 3 do
    write_at(path, ((seed * 7 + k * 131) % (size // BLOCK)) * BLOCK + 100, bytes(seed * 10 + k, 3000))
  end
end

local function open(name, peer)
  local svc = check("open " .. name, vmrepl.open("local:" .. scratch .. "/" .. name, {
    host_name = name, listen = "127.0.0.1:0", hosts = { [peer] = "127.0.0.1" },
  }))
  return svc
end

local status = 0
do
  local b <close> = open("hv-b", "hv-a")
  local a <close> = open("hv-a", "hv-b")
  local hosts = { ["hv-a"] = a, ["hv-b"] = b }
  -- Both are recovery servers, each admitting the other.
  for _, p in ipairs({ { b, "hv-a" }, { a, "hv-b" } }) do
    finish("ModifyServiceSettings", p[1]:modify_service_settings { RecoveryServerEnabled = true, AllowedAuthenticationType = 1 })
    finish("AddAuthorizationEntry", p[1]:add_authorization_entry {
      AllowedPrimaryHostSystem = p[2], TrustGroup = "DEFAULT", ReplicaStorageLocation = scratch .. "/replicas-of-" .. p[2],
    })
  end
  local function settings(to)
    return { RecoveryConnectionPoint = to, RecoveryServerPortNumber = hosts[to]:info().ListenPort,
      AuthenticationType = 1, ReplicationInterval = 300, RecoveryHistory = 4, CompressionEnabled = true }
  end

  local vm = check("DefineSystem", a:define_system { name = "db01", disks = { size } })
  local disk = check("disk_path", a:disk_path(vm))
  for offset = 0, size - 1, 4 * MIB do write_at(disk, offset, bytes(offset + 1, MIB)) end
  print(string.format("defined %s (%s) on hv-a, %d MiB disk", vm.ElementName, vm.Name, size_mib))
  finish("CreateReplicationRelationship", a:create_replication_relationship(vm, settings("hv-b")))
  local ir = finish("StartReplication", a:start_replication(vm, vmrepl.InitialReplicationType.Network)):properties()
  print(string.format("initial replication hv-a -> hv-b: %d blocks", ir.BlocksSent))
  for c = 1, 2 do
    scribble(disk, c)
    local r = finish("ReplicateNow", a:replicate_now(vm)):properties()
    print(string.format("cycle %d hv-a -> hv-b: %d blocks", c, r.BlocksSent))
  end
  scribble(disk, 3) -- never replicated: hv-a is lost before its next cycle
  a:close()
  print("hv-a is lost")

  local function states()
    local out = {}
    for _, name in ipairs({ "hv-a", "hv-b" }) do
      local svc = hosts[name]
      if svc:closed() then
        out[#out + 1] = name .. " down"
      else
        local s = check("GetSystem", svc:get_system(vm.Name))
        out[#out + 1] = string.format("%s mode %d state %d (%s)", name, s.ReplicationMode, s.ReplicationState,
          vmrepl.ReplicationState[s.ReplicationState])
      end
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

  local points = check("ListRecoveryPoints", b:list_recovery_points(vm.Name))
  local latest = points[#points]
  print(string.format("   hv-b holds %d recovery points; the latest is #%d", #points, latest.RecoveryPointSequence))
  step(string.format("fail over on hv-b to point #%d", latest.RecoveryPointSequence),
    b:initiate_failover(vm.Name, latest))
  local digest = finish("ComputeDigest", b:compute_digest(vm.Name)):properties()
  local same = #digest.DiskMerkleRoots == #latest.DiskMerkleRoots
  for k, root in ipairs(latest.DiskMerkleRoots) do same = same and digest.DiskMerkleRoots[k] == root end
  print("   the failed-over disk against the point's Merkle roots: " .. (same and "equal" or "DIFFERENT"))
  if not same then status = 1 end
  step("commit the failover on hv-b", b:commit_failover(vm.Name))
  step("start db01 on hv-b", b:request_state_change(vm.Name, vmrepl.EnabledState.Running))
  local bdisk = check("disk_path", b:disk_path(vm.Name))
  scribble(bdisk, 4)

  -- hv-a comes back on the same host root, with its stale db01.
  local a2 <close> = open("hv-a", "hv-b")
  hosts["hv-a"] = a2
  print("hv-a is back: " .. states())
  step("make db01 on hv-a a replica",
    a2:request_replication_state_change(vm.Name, vmrepl.RequestedState.WaitingToCompleteInitialReplication))
  local job = step("reverse replication on hv-b -> hv-a (verify full)",
    b:reverse_replication_relationship(vm.Name, settings("hv-a"), { verify = "full" }))
  local r = job:properties()
  print(string.format("   reverse sent %d blocks, %d data bytes (%d bytes on the wire) of a %d-byte disk (%.2f%%)",
    r.BlocksSent, r.DataBytesSent, r.WireBytesSent, size, 100 * r.DataBytesSent / size))
  step("start replication hv-b -> hv-a", b:start_replication(vm.Name, vmrepl.InitialReplicationType.Network))
  scribble(bdisk, 5)
  local c = step("cycle hv-b -> hv-a", b:replicate_now(vm.Name)):properties()
  print(string.format("   cycle hv-b -> hv-a: %d blocks", c.BlocksSent))

  local image = check("GetSystem", a2:get_system(vm.Name)).Folder .. "/replica/disk0.img"
  if read(image) == read(bdisk) then
    print("recovered: hv-b is the primary and hv-a's replica equals its disk")
  else
    io.stderr:write("hv-a's replica DIFFERS from hv-b's disk\n")
    status = 1
  end
end -- the services close here (<close>; closing hv-a's first handle again is a no-op)

if temporary then os.execute("rm -rf '" .. scratch .. "'") end
os.exit(status)
