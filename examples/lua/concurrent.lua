#!/usr/bin/env lua5.4
--[[ Two VMs failed over and reversed at the same time, one coroutine each, under luv.

  hv-a replicates web01 and db01 to hv-b. Then two coroutines of a luv loop (vmrepl.luv) each
  move one VM to hv-b: VM off on hv-a, prepare the planned failover on hv-a, fail over on hv-b,
  write on hv-b, reverse the replication on hv-b towards hv-a. Every job:wait() yields: the
  loop watches the services' descriptors (svc:fd(), a luv poll handle per service) and resumes
  a coroutine when its job is final, so both VMs' jobs run at once in one thread. The timeline
  printed at the end shows the steps of the two VMs interleaved.

  Exit status 0 when both steps ran interleaved and, for both VMs, hv-a's replica equals hv-b's
  disk byte for byte. Needs lua-luv (apt-get install lua-luv).

    LUA_CPATH="build/bindings/lua/lua/?.so;;" LUA_PATH="bindings/lua/?.lua;;" \
        lua5.4 examples/lua/concurrent.lua [SCRATCH_DIR] [--size-mib N]

  SCRATCH_DIR defaults to a fresh temporary directory, removed at the end.
]]
local vmrepl = require("vmrepl")
local vl = require("vmrepl.luv") -- installs the scheduler: job:wait() in a coroutine yields

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

-- Every call returns its result, or nil, message, code: raise at the first failure (inside a
-- coroutine, vl.run() re-raises it; the script then ends with status 1).
local function check(what, ok, msg, code)
  if not ok then
    error(string.format("%s failed: %s (%s, %s)", what, msg, vmrepl.Status[code] or "?", code), 0)
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

local function open(name, peer)
  return check("open " .. name, vmrepl.open("local:" .. scratch .. "/" .. name, {
    host_name = name, listen = "127.0.0.1:0", hosts = { [peer] = "127.0.0.1" },
  }))
end

local status, failure = 0, nil
do
  local b <close> = open("hv-b", "hv-a")
  local a <close> = open("hv-a", "hv-b")
  local hosts = { ["hv-a"] = a, ["hv-b"] = b }
  for _, p in ipairs({ { b, "hv-a" }, { a, "hv-b" } }) do
    finish("ModifyServiceSettings", p[1]:modify_service_settings { RecoveryServerEnabled = true, AllowedAuthenticationType = 1 })
    finish("AddAuthorizationEntry", p[1]:add_authorization_entry {
      AllowedPrimaryHostSystem = p[2], TrustGroup = "DEFAULT", ReplicaStorageLocation = scratch .. "/replicas-of-" .. p[2],
    })
  end
  local function settings(to)
    return { RecoveryConnectionPoint = to, RecoveryServerPortNumber = hosts[to]:info().ListenPort,
      AuthenticationType = 1, ReplicationInterval = 300, RecoveryHistory = 3, CompressionEnabled = true }
  end

  -- The two VMs, replicated one after the other (the main thread: job:wait() blocks here).
  local vms = {}
  for k, name in ipairs({ "web01", "db01" }) do
    local vm = check("DefineSystem", a:define_system { name = name, disks = { size } })
    local disk = check("disk_path", a:disk_path(vm))
    for offset = 0, size - 1, 2 * MIB do write_at(disk, offset, bytes(k * 1000 + offset // MIB, MIB)) end
    finish("CreateReplicationRelationship", a:create_replication_relationship(vm, settings("hv-b")))
    local ir = finish("StartReplication", a:start_replication(vm, vmrepl.InitialReplicationType.Network))
    print(string.format("%s (%s) on hv-a, %d MiB disk, replicated to hv-b: %d blocks", name, vm.Name, size_mib,
      ir:properties().BlocksSent))
    vms[k] = vm
  end

  local uv = require("luv")
  local function clock() return uv.hrtime() / 1e9 end -- wall clock, seconds
  local t0 = clock()
  local timeline = {}
  local function log(vm, what)
    timeline[#timeline + 1] = { vm = vm.ElementName, what = what }
    print(string.format("  [%6.3f] %-5s %s", clock() - t0, vm.ElementName, what))
  end

  -- One VM's move to hv-b, in its own coroutine: each wait yields to the loop.
  local events, sent = {}, {}
  local function move(vm, seed)
    local name = vm.ElementName
    events[name] = 0
    local function step(what, job, msg, code)
      check(what, job, msg, code)
      job:on_progress(function() events[name] = events[name] + 1 end)
      log(vm, what .. " started")
      check(what, job:wait(600))
      log(vm, string.format("%s: JobState %d (%s)", what, job:state(), vmrepl.JobState[job:state()]))
      return job
    end
    check("RequestStateChange", a:request_state_change(vm.Name, vmrepl.EnabledState.Off))
    step("prepare on hv-a", a:request_replication_state_change(vm.Name, vmrepl.RequestedState.SyncedReplicationComplete))
    step("fail over on hv-b", b:initiate_failover(vm.Name))
    local disk = check("disk_path", b:disk_path(vm.Name))
    for k = 0, 3 do write_at(disk, ((seed * 7 + k * 131) % (size // BLOCK)) * BLOCK + 100, bytes(seed * 10 + k, 3000)) end
    local job = step("reverse hv-b -> hv-a", b:reverse_replication_relationship(vm.Name, settings("hv-a")))
    sent[name] = job:properties().BlocksSent
  end

  for k, vm in ipairs(vms) do vl.spawn(move, vm, k) end
  local ok, err = pcall(vl.run) -- returns when both coroutines are done
  if not ok then
    failure = err
  else
    -- Interleaved: the second VM started before the first one's last step ended.
    local first_start, last_end = {}, {}
    for i, e in ipairs(timeline) do
      first_start[e.vm] = first_start[e.vm] or i
      last_end[e.vm] = i
    end
    local interleaved = first_start.db01 < last_end.web01 and first_start.web01 < last_end.db01
    print(string.format("the two moves ran %s (%d and %d progress events)",
      interleaved and "interleaved" or "ONE AFTER THE OTHER", events.web01, events.db01))
    if not interleaved then status = 1 end

    for _, vm in ipairs(vms) do
      local sa, sb = check("GetSystem", a:get_system(vm.Name)), check("GetSystem", b:get_system(vm.Name))
      local equal = read(sa.Folder .. "/replica/disk0.img") == read(check("disk_path", b:disk_path(vm.Name)))
      print(string.format("%-5s hv-b mode %d state %d, hv-a mode %d state %d; reverse sent %d blocks; "
        .. "hv-a's replica %s hv-b's disk", vm.ElementName, sb.ReplicationMode, sb.ReplicationState,
        sa.ReplicationMode, sa.ReplicationState, sent[vm.ElementName],
        equal and "equals" or "DIFFERS from"))
      if not equal or sb.ReplicationMode ~= vmrepl.ReplicationMode.Primary
          or sa.ReplicationMode ~= vmrepl.ReplicationMode.Replica then
        status = 1
      end
    end
  end
end -- both services close here (<close>)

if temporary then os.execute("rm -rf '" .. scratch .. "'") end
if failure then
  io.stderr:write(tostring(failure), "\n")
  status = 1
end
if status == 0 then print("both VMs reversed: byte-equal") end
os.exit(status)
