-- Failover, test failover and ReverseReplicationRelationship between two in-process services on
-- 127.0.0.1 that each admit the other (a reverse makes the old primary a replica, so hv-a is a
-- recovery server too). Disks are bench/gen_image.py "mixed" images changed with its "modify"
-- command; bytes are compared on disk (a replica's data: <VM Folder>/replica/disk0.img).
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

local MIB = 1 << 20
local GEN_IMAGE = (os.getenv("VMREPL_SOURCE_DIR") or ".") .. "/bench/gen_image.py"

-- bench/gen_image.py with these arguments (its report line is dropped).
local function gen(...)
  local args = {}
  for i, v in ipairs({ ... }) do args[i] = "'" .. tostring(v) .. "'" end
  H.sh("/usr/bin/python3 '" .. GEN_IMAGE .. "' " .. table.concat(args, " ") .. " >/dev/null")
end

describe("failover", function()
  local P, port_a

  before_each(function()
    P = H.pair()
    -- hv-a admits hv-b too, its replicas under its own host root.
    H.ok(P.a:modify_service_settings { RecoveryServerEnabled = true, AllowedAuthenticationType = 1 })
    H.ok(P.a:add_authorization_entry {
      AllowedPrimaryHostSystem = "hv-b", TrustGroup = "DEFAULT", ReplicaStorageLocation = P.dir .. "/a",
    })
    port_a = P.a:info().ListenPort
  end)
  after_each(function() P.close() end)

  -- Settings replicating to hv-a (what a reverse on hv-b passes).
  local function to_a(extra)
    local s = { RecoveryConnectionPoint = "hv-a", RecoveryServerPortNumber = port_a, AuthenticationType = 1,
      ReplicationInterval = 300, RecoveryHistory = 3 }
    for k, v in pairs(extra or {}) do s[k] = v end
    return s
  end

  local function modes(svc, vm)
    local s = assert(svc:get_system(vm.Name))
    return { s.ReplicationMode, s.ReplicationState }
  end

  local function replica_image(svc, vm)
    return assert(svc:get_system(vm.Name)).Folder .. "/replica/disk0.img"
  end

  local function disk(svc, vm)
    return assert(svc:disk_path(vm.Name))
  end

  -- A VM on hv-a holding a mixed image, replicating to hv-b.
  local function replicated(name, mib, seed)
    local vm = assert(P.a:define_system { name = name, disks = { mib * MIB } })
    gen("mixed", disk(P.a, vm), mib, seed)
    H.ok(P.a:create_replication_relationship(vm, P.settings()))
    H.ok(P.a:start_replication(vm, vmrepl.InitialReplicationType.Network))
    return vm
  end

  -- Prepare on the old primary (VM off, state 4), fail over to the latest point on the new side.
  local function planned_failover(old, new, vm)
    assert.is_true(old:request_state_change(vm.Name, vmrepl.EnabledState.Off))
    H.ok(old:request_replication_state_change(vm.Name, vmrepl.RequestedState.SyncedReplicationComplete))
    assert.are.same({ 1, vmrepl.ReplicationState.SyncedReplicationComplete }, modes(old, vm))
    local job = H.ok(new:initiate_failover(vm.Name))
    assert.are.equal(vmrepl.JobType.InitiateFailover, job:job_type())
    assert.are.same({ 2, vmrepl.ReplicationState.Recovered }, modes(new, vm))
    assert.are.equal(vmrepl.ReplicationType.Planned, new:get_system(vm.Name).FailedOverReplicationType)
    assert.is_true(H.read(disk(new, vm)) == H.read(disk(old, vm)), "the failed-over disk differs")
  end

  it("planned runbook: fail over, reverse, cycles, fail back (verify full)", function()
    local vm = replicated("web01", 16, 11)
    planned_failover(P.a, P.b, vm)
    assert.is_true(P.b:request_state_change(vm.Name, vmrepl.EnabledState.Running))
    gen("modify", disk(P.b, vm), 1, 21)
    local job = H.ok(P.b:reverse_replication_relationship(vm.Name, to_a()))
    assert.are.equal(vmrepl.JobType.ReverseReplication, job:job_type())
    local r = job:properties()
    assert.are.same({ vmrepl.ReplicationMode.Primary, vmrepl.ReplicationState.Replicating }, modes(P.b, vm))
    assert.are.same({ vmrepl.ReplicationMode.Replica, vmrepl.ReplicationState.Replicating }, modes(P.a, vm))
    assert.is_true(H.read(replica_image(P.a, vm)) == H.read(disk(P.b, vm)), "hv-a's replica differs")
    assert.is_string(r.ChangeSource)
    assert.is_true(r.BlocksSent > 0 and r.BlocksSent < 16, "BlocksSent " .. tostring(r.BlocksSent))
    assert.are.equal("hv-a", P.b:get_replication_settings(vm.Name).RecoveryConnectionPoint)
    gen("modify", disk(P.b, vm), 1, 22)
    H.ok(P.b:replicate_now(vm.Name))
    assert.is_true(H.read(replica_image(P.a, vm)) == H.read(disk(P.b, vm)), "cycle hv-b -> hv-a")

    -- Failback: the settings as JSON text this time, verified in full.
    assert.is_true(P.b:request_state_change(vm.Name, vmrepl.EnabledState.Off))
    planned_failover(P.b, P.a, vm)
    gen("modify", disk(P.a, vm), 1, 23)
    job = H.ok(P.a:reverse_replication_relationship(vm, vmrepl.json_encode(P.settings()), { verify = "full" }))
    assert.are.same({ 1, 3 }, modes(P.a, vm))
    assert.are.same({ 2, 3 }, modes(P.b, vm))
    assert.is_true(H.read(replica_image(P.b, vm)) == H.read(disk(P.a, vm)), "hv-b's replica differs")
    assert.is_true(job:properties().BlocksSent > 0)
  end)

  it("a prepared failover is reverted on the primary", function()
    local vm = replicated("app01", 8, 12)
    H.ok(P.a:request_replication_state_change(vm, 4))
    assert.are.same({ 1, 4 }, modes(P.a, vm))
    local job = H.ok(P.a:revert_failover(vm))
    assert.are.equal(vmrepl.JobType.RevertFailover, job:job_type())
    assert.are.same({ 1, 3 }, modes(P.a, vm))
  end)

  it("unplanned: older point, commit, make replica, reverse (verify full), start", function()
    local vm = replicated("db01", 16, 13)
    for _, seed in ipairs({ 31, 32 }) do
      gen("modify", disk(P.a, vm), 1, seed)
      H.ok(P.a:replicate_now(vm))
    end
    gen("modify", disk(P.a, vm), 1, 33) -- never replicated
    local points = assert(P.b:list_recovery_points(vm.Name))
    assert.are.equal(3, #points)
    local older = points[2]
    H.ok(P.b:initiate_failover(vm.Name, older)) -- the recovery point Instance
    assert.are.same({ 2, vmrepl.ReplicationState.Recovered }, modes(P.b, vm))
    local digest = H.ok(P.b:compute_digest(vm.Name)):properties()
    assert.are.same(older.DiskMerkleRoots, digest.DiskMerkleRoots)
    local job = H.ok(P.b:commit_failover(vm.Name))
    assert.are.equal(vmrepl.JobType.CommitFailover, job:job_type())
    assert.are.same({ 2, vmrepl.ReplicationState.Committed }, modes(P.b, vm))
    assert.are.equal(1, #P.b:list_recovery_points(vm.Name))
    gen("modify", disk(P.b, vm), 1, 34)

    H.ok(P.a:request_replication_state_change(vm, vmrepl.RequestedState.WaitingToCompleteInitialReplication))
    assert.are.same({ 2, 2 }, modes(P.a, vm))
    job = H.ok(P.b:reverse_replication_relationship(vm.Name, to_a(), { verify = "full" }))
    assert.is_true(job:properties().BlocksSent > 0)
    assert.are.same({ 1, 1 }, modes(P.b, vm))
    assert.are.same({ 2, 2 }, modes(P.a, vm))
    H.ok(P.b:start_replication(vm.Name, 1))
    assert.are.same({ 1, 3 }, modes(P.b, vm))
    assert.are.same({ 2, 3 }, modes(P.a, vm))
    assert.is_true(H.read(replica_image(P.a, vm)) == H.read(disk(P.b, vm)), "hv-a's replica differs")
  end)

  it("revert_failover on the replica drops the failover disk and replication goes on", function()
    local vm = replicated("fs01", 8, 14)
    local points = assert(P.b:list_recovery_points(vm.Name))
    H.ok(P.b:initiate_failover(vm.Name, points[#points].RecoveryPointSequence)) -- a sequence number
    assert.is_true(H.read(disk(P.b, vm)) == H.read(disk(P.a, vm)))
    H.ok(P.b:revert_failover(vm.Name))
    assert.are.same({ 2, 3 }, modes(P.b, vm))
    gen("modify", disk(P.a, vm), 1, 41)
    H.ok(P.a:replicate_now(vm))
    assert.is_true(H.read(replica_image(P.b, vm)) == H.read(disk(P.a, vm)))
    local ok, msg, code = P.b:commit_failover(vm.Name)
    assert.is_nil(ok)
    assert.matches("ReplicationState 3", msg, 1, true)
    assert.are.equal(vmrepl.Status.InvalidState, code)
  end)

  it("reverse errors answer at once: nil, message, code", function()
    local vm = replicated("err01", 8, 15)
    local ok, msg, code = P.a:reverse_replication_relationship(vm, to_a())
    assert.is_nil(ok)
    assert.matches("ReplicationMode 1", msg, 1, true)
    assert.are.equal(32775, code)
    ok, msg, code = P.b:reverse_replication_relationship(vm.Name, to_a())
    assert.is_nil(ok)
    assert.matches("ReplicationState 3", msg, 1, true)
    assert.are.equal(32775, code)
    H.ok(P.b:initiate_failover(vm.Name, "")) -- "" is the latest too
    ok, msg, code = P.b:reverse_replication_relationship(vm.Name, to_a { RecoveryServerPortNumber = 0 })
    assert.is_nil(ok)
    assert.are.equal("RecoveryServerPortNumber", msg:sub(1, #"RecoveryServerPortNumber"))
    assert.are.equal(vmrepl.Status.InvalidParameter, code)
    ok, msg, code = P.b:reverse_replication_relationship(vm.Name, to_a(), { verify = "bogus" })
    assert.is_nil(ok)
    assert.matches("verify 'bogus'", msg, 1, true)
    assert.are.equal(vmrepl.Status.InvalidParameter, code)
    ok, msg, code = P.a:initiate_failover(vm)
    assert.is_nil(ok)
    assert.matches("not a replica", msg, 1, true)
    assert.are.equal(32775, code)
    ok, msg, code = P.b:test_replica_system("ghost")
    assert.is_nil(ok)
    assert.are.equal(vmrepl.Status.FileNotFound, code)
    assert.are.same({ 2, vmrepl.ReplicationState.Recovered }, modes(P.b, vm)) -- nothing moved

    -- Misuse raises.
    assert.matches("unknown option 'verfy'",
      H.raises(P.b.reverse_replication_relationship, P.b, vm.Name, to_a(), { verfy = "full" }))
    assert.matches("'verify' must be a string",
      H.raises(P.b.reverse_replication_relationship, P.b, vm.Name, to_a(), { verify = 1 }))
    assert.matches("table expected",
      H.raises(P.b.reverse_replication_relationship, P.b, vm.Name, to_a(), "full"))
    assert.matches("setting data", H.raises(P.b.reverse_replication_relationship, P.b, vm.Name, 42))
    assert.matches("a recovery point %(Msvm_VirtualSystemSettingData%) is needed, not Msvm_ComputerSystem",
      H.raises(P.b.initiate_failover, P.b, vm.Name, vm))
    assert.matches("recovery point", H.raises(P.b.test_replica_system, P.b, vm.Name, true))
    assert.matches("out of range", H.raises(P.b.initiate_failover, P.b, vm.Name, -1))
  end)

  it("test_replica_system: a '<name> - Test' VM (mode 3) that destroy_system removes", function()
    local vm = replicated("web02", 8, 16)
    local job = H.ok(P.b:test_replica_system(vm.Name))
    assert.are.equal(vmrepl.JobType.InitiateTestReplica, job:job_type())
    local test_vm = job:properties().ResultingSystem
    local t = assert(P.b:get_system(test_vm))
    assert.are.equal("web02 - Test", t.ElementName)
    assert.are.equal(vmrepl.ReplicationMode.TestReplica, t.ReplicationMode)
    assert.are_not.equal(vm.Name, t.Name)
    assert.is_true(H.read(assert(P.b:disk_path(test_vm))) == H.read(replica_image(P.b, vm)))
    local ok, _, code = P.b:test_replica_system(vm.Name) -- one at a time
    assert.is_nil(ok)
    assert.are.equal(32775, code)
    gen("modify", disk(P.a, vm), 1, 51)
    H.ok(P.a:replicate_now(vm)) -- replication goes on meanwhile
    assert.are.same({ 2, 3 }, modes(P.b, vm))
    assert.is_true(P.b:destroy_system(test_vm))
    local gone, msg, code2 = P.b:get_system(test_vm)
    assert.is_nil(gone)
    assert.is_string(msg)
    assert.are.equal(vmrepl.Status.FileNotFound, code2)
    -- From the oldest point, by InstanceID.
    local first = assert(P.b:list_recovery_points(vm.Name))[1]
    test_vm = H.ok(P.b:test_replica_system(vm.Name, first.InstanceID)):properties().ResultingSystem
    local d = H.ok(P.b:compute_digest(test_vm)):properties()
    assert.are.same(first.DiskMerkleRoots, d.DiskMerkleRoots)
    assert.is_true(P.b:destroy_system(test_vm))
  end)

  it("methods of a closed service raise", function()
    local svc, dir = H.service()
    local vm = assert(svc:define_system { name = "vm", disks = { MIB } })
    svc:close()
    for _, name in ipairs({ "initiate_failover", "revert_failover", "commit_failover", "test_replica_system" }) do
      assert.matches("vmrepl.Service is closed", H.raises(svc[name], svc, vm))
    end
    assert.matches("vmrepl.Service is closed", H.raises(svc.reverse_replication_relationship, svc, vm, to_a()))
    H.rmrf(dir)
  end)
end)
