#!/usr/bin/env lua5.4
--[[ Replication between two in-process services on 127.0.0.1, from Lua.

  hv-b becomes a recovery server that admits hv-a; hv-a enables replication of a VM, runs the
  initial replication, then writes into the disk and replicates again a few times. It prints
  each cycle, the recovery points on hv-b, and the digests of both sides' disks.

  Run it from the repository root with LUA_CPATH pointing at the built module (vmrepl.so is
  in <build dir>/bindings/lua/lua/):

    LUA_CPATH="build/bindings/lua/lua/?.so;;" lua5.4 examples/lua/replicate.lua [SCRATCH_DIR] [--cycles N]

  SCRATCH_DIR defaults to a fresh temporary directory, removed at the end. Once installed
  (vmrepl.so in the Lua 5.4 cpath, e.g. /usr/local/lib/lua/5.4), no LUA_CPATH is needed.
]]
local vmrepl = require("vmrepl")

local scratch, cycles = nil, 3
do
  local i = 1
  while i <= #arg do
    if arg[i] == "--cycles" then
      cycles = assert(math.tointeger(tonumber(arg[i + 1])), "--cycles needs a number")
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

-- Every call returns its result, or nil, message, code: stop at the first failure.
local function check(what, ok, msg, code)
  if not ok then
    io.stderr:write(string.format("%s failed: %s (%s, %d)\n", what, msg, vmrepl.Status[code] or "?", code))
    os.exit(1, true) -- closes the state: the <close> services are closed on the way out
  end
  return ok
end

-- Waits for a method's job (ended in Exception: its ErrorDescription and ErrorCode).
local function finish(what, job, msg, code)
  check(what, job, msg, code)
  check(what, job:wait(600))
  return job
end

-- Writes `n` 64 KiB blocks of fresh bytes into the disk at scattered offsets.
local function write_blocks(path, n, seed, disk_size)
  local f = assert(io.open(path, "r+b"))
  local block = 65536
  for k = 1, n do
    local offset = ((seed * 7919 + k * 104729) % (disk_size // block)) * block
    f:seek("set", offset)
    f:write(string.rep(string.pack("<I4I4", seed, k), block // 8))
  end
  f:close()
end

local function digest(svc, vm)
  local job = finish("ComputeDigest", svc:compute_digest(vm))
  return job:properties()
end

local disk_size = 64 << 20
local status = 0
do
  local b <close> = check("open", vmrepl.open("local:" .. scratch .. "/b", {
    host_name = "hv-b", listen = "127.0.0.1:0", hosts = { ["hv-a"] = "127.0.0.1" },
  }))
  local a <close> = check("open", vmrepl.open("local:" .. scratch .. "/a", {
    host_name = "hv-a", listen = "127.0.0.1:0", hosts = { ["hv-b"] = "127.0.0.1" },
  }))
  local port = b:info().ListenPort
  print(string.format("hv-b: recovery server on 127.0.0.1:%d", port))

  finish("ModifyServiceSettings", b:modify_service_settings { RecoveryServerEnabled = true, AllowedAuthenticationType = 1 })
  finish("AddAuthorizationEntry", b:add_authorization_entry {
    AllowedPrimaryHostSystem = "hv-a", TrustGroup = "DEFAULT", ReplicaStorageLocation = scratch .. "/replicas",
  })

  local vm = check("DefineSystem", a:define_system { name = "web01", disks = { disk_size } })
  local disk = check("disk_path", a:disk_path(vm, 0))
  write_blocks(disk, 64, 1, disk_size)
  print(string.format("hv-a: VM %s (%s), disk %s", vm.ElementName, vm.Name, disk))

  finish("CreateReplicationRelationship", a:create_replication_relationship(vm, {
    RecoveryConnectionPoint = "hv-b", RecoveryServerPortNumber = port, AuthenticationType = 1,
    ReplicationInterval = 300, RecoveryHistory = 4, CompressionEnabled = true,
  }))
  local job = finish("StartReplication", a:start_replication(vm, vmrepl.InitialReplicationType.Network))
  local p = job:properties()
  print(string.format("initial replication: %d blocks, %d bytes on the wire", p.BlocksSent or 0, p.WireBytesSent or 0))

  for c = 1, cycles do
    write_blocks(disk, 8, 100 + c, disk_size)
    job = finish("ReplicateNow", a:replicate_now(vm))
    p = job:properties()
    print(string.format("cycle %d: %d blocks, %d bytes on the wire", c, p.BlocksSent or 0, p.WireBytesSent or 0))
  end

  local primary = a:get_system(vm)
  local replica = check("GetSystem", b:get_system(vm.Name))
  print(string.format("hv-a: ReplicationMode %s, ReplicationState %s", vmrepl.ReplicationMode[primary.ReplicationMode],
    vmrepl.ReplicationState[primary.ReplicationState]))
  print(string.format("hv-b: ReplicationMode %s, ReplicationState %s", vmrepl.ReplicationMode[replica.ReplicationMode],
    vmrepl.ReplicationState[replica.ReplicationState]))

  print("recovery points on hv-b (oldest first):")
  local points = check("ListRecoveryPoints", b:list_recovery_points(vm.Name))
  for _, point in ipairs(points) do
    print(string.format("  #%d  %s  disk 0 root %s%s", point.RecoveryPointSequence, point.CreationTime,
      point.DiskMerkleRoots[1], point.IsLatest and "  (latest)" or ""))
  end
  local stats = check("GetReplicationStatistics", a:get_replication_statistics(vm))
  print(string.format("statistics: %d successful cycles", stats.ReplicationSuccessCount or 0))

  local image = replica.Folder .. "/replica/disk0.img"
  local fa, fb = assert(io.open(disk, "rb")), assert(io.open(image, "rb"))
  local same = fa:read("a") == fb:read("a")
  fa:close()
  fb:close()
  local d = digest(a, vm)
  local latest = points[#points].DiskMerkleRoots[1]
  print(string.format("digest of hv-a's disk: MerkleRoot %s, disk 0 root %s (%d blocks, %d zero)", d.MerkleRoot,
    d.DiskMerkleRoots[1], d.BlockCount, d.ZeroBlocks))
  print(string.format("latest recovery point's disk 0 root: %s (%s)", latest,
    latest == d.DiskMerkleRoots[1] and "equal" or "DIFFERENT"))
  print(string.format("replica image %s: %s", image, same and "byte-equal to the primary disk" or "DIFFERENT"))
  if not same or latest ~= d.DiskMerkleRoots[1] then status = 1 end
end -- both services close here (<close>)

if temporary then os.execute("rm -rf '" .. scratch .. "'") end
os.exit(status)
