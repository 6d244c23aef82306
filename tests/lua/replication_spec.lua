-- Replication between two in-process services on 127.0.0.1 (hv-a primary, hv-b recovery
-- server): settings, authorization, relationships, cycles, points, errors from the engine.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

local MIB = 1 << 20

describe("replication", function()
  local P
  before_each(function() P = H.pair() end)
  after_each(function() P.close() end)

  -- A VM on hv-a with data in its disk.
  local function primary_vm(name, mib)
    local vm = assert(P.a:define_system { name = name, disks = { (mib or 16) * MIB } })
    local disk = assert(P.a:disk_path(vm))
    for k = 0, 7 do H.write_at(disk, k * MIB + 4096, H.bytes(k + 1, 3 * H.BLOCK)) end
    return vm, disk
  end

  -- A VM replicating (initial replication done).
  local function replicating_vm(name, extra)
    local vm, disk = primary_vm(name)
    H.ok(P.a:create_replication_relationship(vm, P.settings(extra)))
    H.ok(P.a:start_replication(vm, vmrepl.InitialReplicationType.Network))
    return vm, disk
  end

  describe("the recovery server", function()
    it("get/modify_service_settings with a table, CIM-XML, MOF and an Instance", function()
      local s = assert(P.b:get_service_settings())
      assert.are.equal("Msvm_ReplicationServiceSettingData", s:class_name())
      assert.is_true(s.RecoveryServerEnabled)
      assert.are.equal(1, s.AllowedAuthenticationType)
      assert.is_true(P.b:info().RecoveryServerEnabled)
      for _, text in ipairs({ s:to_cim_xml(), s:to_mof(), s:to_json() }) do
        H.ok(P.b:modify_service_settings(text))
      end
      H.ok(P.b:modify_service_settings(s))
      H.ok(P.b:modify_service_settings { RecoveryServerEnabled = true, AllowedAuthenticationType = 1,
        MonitoringInterval = 3600 })
      assert.are.equal(3600, P.b:get_service_settings().MonitoringInterval)
      local ok, msg, code = P.b:modify_service_settings { Bogus = 1 }
      assert.is_nil(ok)
      assert.matches("no property 'Bogus'", msg)
      assert.are.equal(vmrepl.Status.InvalidParameter, code)
      ok, msg, code = P.b:modify_service_settings { RecoveryServerEnabled = "yes" }
      assert.is_nil(ok)
      assert.matches("RecoveryServerEnabled", msg)
      assert.are.equal(vmrepl.Status.IncorrectDataType, code)
    end)

    it("add, modify, list and remove authorization entries", function()
      local entries = P.b:list_authorization_entries()
      assert.are.equal(1, #entries)
      assert.are.equal("Msvm_ReplicationAuthorizationSettingData", entries[1]:class_name())
      assert.are.equal("hv-a", entries[1].AllowedPrimaryHostSystem)
      assert.are.equal(P.dir .. "/replicas", entries[1].ReplicaStorageLocation)
      H.ok(P.b:add_authorization_entry { AllowedPrimaryHostSystem = "hv-c", TrustGroup = "DEFAULT",
        ReplicaStorageLocation = P.dir .. "/c1" })
      H.ok(P.b:modify_authorization_entry { AllowedPrimaryHostSystem = "hv-c", TrustGroup = "DEFAULT",
        ReplicaStorageLocation = P.dir .. "/c2" })
      local by_host = {}
      for _, e in ipairs(P.b:list_authorization_entries()) do by_host[e.AllowedPrimaryHostSystem] = e end
      assert.are.equal(P.dir .. "/c2", by_host["hv-c"].ReplicaStorageLocation)
      H.ok(P.b:remove_authorization_entry("hv-c"))
      assert.are.equal(1, #P.b:list_authorization_entries())
      local ok, msg, code = P.b:remove_authorization_entry("hv-c")
      assert.is_nil(ok)
      assert.matches("no authorization entry", msg)
      assert.are.equal(vmrepl.Status.FileNotFound, code)
    end)

    it("test_replication_connection reaches the listener, or fails in the job", function()
      H.ok(P.a:test_replication_connection("hv-b", P.port, vmrepl.AuthenticationType.Kerberos))
      H.ok(P.a:test_replication_connection("hv-b", P.port)) -- AuthenticationType 1 by default
      local job = assert(P.b:test_replication_connection("hv-a", 1, 1)) -- nothing listens on port 1
      local ok, msg, code = job:wait(60)
      assert.is_nil(ok)
      assert.matches("cannot connect", msg)
      assert.are.equal(vmrepl.Status.SystemNotAvailable, code)
      assert.are.equal(vmrepl.JobState.Exception, job:state())
      assert.are.equal(vmrepl.JobType.TestReplicationConnection, job:job_type())
      ok, msg, code = P.a:test_replication_connection("hv-b", 0, 1)
      assert.is_nil(ok)
      assert.matches("must not be 0", msg)
      assert.are.equal(32773, code)
      ok, msg, code = P.a:test_replication_connection("hv-b", P.port, 2) -- certificate: a thumbprint is needed
      assert.is_nil(ok)
      assert.matches("CertificateThumbPrint", msg)
      assert.are.equal(32773, code)
    end)
  end)

  it("replicates: the replica image is byte-equal after the initial replication and each cycle", function()
    local vm, disk = primary_vm("web01")
    local job = assert(P.a:create_replication_relationship(vm, P.settings { RecoveryHistory = 3 }))
    assert.are.equal(vmrepl.JobType.CreateReplicationRelationship, job:job_type())
    assert.is_true(job:wait(60))
    local primary = P.a:get_system(vm)
    assert.are.equal(vmrepl.ReplicationMode.Primary, primary.ReplicationMode)
    assert.are.equal(vmrepl.ReplicationState.ReadyForReplication, primary.ReplicationState)
    local replica = assert(P.b:get_system(vm.Name))
    assert.are.equal(vmrepl.ReplicationMode.Replica, replica.ReplicationMode)
    assert.are.equal(vmrepl.ReplicationState.WaitingToCompleteInitialReplication, replica.ReplicationState)
    assert.are.equal(P.dir .. "/replicas/", replica.Folder:sub(1, #P.dir + 10)) -- under the entry's location

    job = H.ok(P.a:start_replication(vm, vmrepl.InitialReplicationType.Network))
    -- 8 writes of 3 blocks' length at 4 KiB past a block boundary touch 4 blocks each; the
    -- zero blocks are not sent.
    assert.are.equal(32, job:properties().BlocksSent)
    assert.are.equal(vmrepl.ReplicationState.Replicating, P.a:get_system(vm).ReplicationState)
    assert.are.equal(vmrepl.ReplicationState.Replicating, P.b:get_system(vm.Name).ReplicationState)
    local image = P.replica_image(vm)
    assert.is_true(H.read(disk) == H.read(image), "replica differs after the initial replication")

    for c = 1, 4 do
      H.write_at(disk, c * 2 * MIB, H.bytes(100 + c, 2 * H.BLOCK))
      job = H.ok(P.a:replicate_now(vm))
      assert.are.equal(2, job:properties().BlocksSent)
      assert.is_true(H.read(disk) == H.read(image), "replica differs after cycle " .. c)
    end

    -- RecoveryHistory 3: the latest point and 3 older ones, oldest first.
    local points = assert(P.b:list_recovery_points(vm.Name))
    assert.are.equal(4, #points)
    for k = 2, #points do
      assert.is_true(points[k].RecoveryPointSequence > points[k - 1].RecoveryPointSequence)
    end
    assert.are.equal("Msvm_VirtualSystemSettingData", points[4]:class_name())
    assert.is_true(points[4].IsLatest)
    assert.are.equal(vm.Name, points[4].VirtualSystemIdentifier)
    -- The latest point's disk root is the digest of the primary's disk.
    local digest = H.ok(P.a:compute_digest(vm)):properties()
    assert.are.equal(digest.DiskMerkleRoots[1], points[4].DiskMerkleRoots[1])

    local stats = assert(P.a:get_replication_statistics(vm))
    assert.are.equal("Msvm_ReplicationStatistics", stats:class_name())
    assert.are.equal(5, stats.ReplicationSuccessCount)
    assert.are.equal(0, stats.ReplicationFailureCount)
    assert.are.equal(vm.Name, stats.VirtualSystemIdentifier)
    assert.is_table(assert(P.b:get_replication_statistics(vm.Name)):to_table())
  end)

  it("disk_mark_dirty: the change feed sends the reported blocks without scanning", function()
    local vm, disk = primary_vm("web01")
    assert.is_true(P.a:disk_mark_dirty(vm, 0, 0, 4096)) -- attaches the feed
    H.ok(P.a:create_replication_relationship(vm, P.settings()))
    H.ok(P.a:start_replication(vm, vmrepl.InitialReplicationType.Network))
    for c = 1, 3 do
      H.write_at(disk, c * MIB, H.bytes(200 + c, 3 * H.BLOCK))
      assert.is_true(P.a:disk_mark_dirty(vm, 0, c * MIB, 3 * H.BLOCK))
      local p = H.ok(P.a:replicate_now(vm)):properties()
      assert.are.equal(3, p.BlocksSent)
      assert.are.equal("change-feed", p.ChangeSource)
      assert.is_true(H.read(disk) == H.read(P.replica_image(vm)))
    end
    local ok, msg, code = P.a:disk_mark_dirty(vm, 3, 0, 1)
    assert.is_nil(ok)
    assert.matches("disk 3 does not exist", msg)
    assert.are.equal(vmrepl.Status.InvalidParameter, code)
    assert.are.equal(32773, select(3, P.a:disk_mark_dirty(vm, 0, 16 * MIB, 4096))) -- past the end
    assert.are.equal(32773, select(3, P.a:disk_mark_dirty(vm, 0, 0, 0)))
    assert.are.equal(32779, select(3, P.a:disk_mark_dirty("nope", 0, 0, 1)))
  end)

  it("get_replication_settings; modify_replication_settings with a table, an Instance and text", function()
    local vm = replicating_vm("web01")
    local s = assert(P.a:get_replication_settings(vm))
    assert.are.equal("Msvm_ReplicationSettingData", s:class_name())
    assert.are.equal("hv-b", s.RecoveryConnectionPoint)
    assert.are.equal(P.port, s.RecoveryServerPortNumber)
    assert.are.equal(300, s.ReplicationInterval)
    assert.is_true(s.CompressionEnabled)
    H.ok(P.a:modify_replication_settings(vm, P.settings { ReplicationInterval = 900, RecoveryHistory = 5 }))
    local now = P.a:get_replication_settings(vm)
    assert.are.equal(900, now.ReplicationInterval)
    assert.are.equal(5, now.RecoveryHistory)
    for _, sd in ipairs({ s, s:to_cim_xml(), s:to_mof(), s:to_json() }) do
      H.ok(P.a:modify_replication_settings(vm, sd))
    end
    assert.are.equal(300, P.a:get_replication_settings(vm).ReplicationInterval)
    -- Read, change, write: one property of the settings in force.
    local t = P.a:get_replication_settings(vm):to_table()
    t.RecoveryHistory = 2
    H.ok(P.a:modify_replication_settings(vm, t))
    assert.are.equal(2, P.a:get_replication_settings(vm).RecoveryHistory)
    assert.are.equal(300, P.a:get_replication_settings(vm).ReplicationInterval)
    -- Bad settings are refused at once, naming the property.
    local ok, msg, code = P.a:modify_replication_settings(vm, P.settings { ReplicationInterval = 1 })
    assert.is_nil(ok)
    assert.matches("ReplicationInterval", msg)
    assert.are.equal(vmrepl.Status.InvalidParameter, code)
    ok, msg, code = P.a:modify_replication_settings(vm, P.settings { RecoveryHistory = 100 })
    assert.is_nil(ok)
    assert.matches("RecoveryHistory", msg)
    assert.are.equal(32773, code)
  end)

  it("suspends and resumes; a cycle needs state Replicating", function()
    local vm = replicating_vm("web01")
    H.ok(P.a:request_replication_state_change(vm, vmrepl.RequestedState.Suspend))
    assert.are.equal(vmrepl.ReplicationState.Suspended, P.a:get_system(vm).ReplicationState)
    local ok, msg, code = P.a:replicate_now(vm)
    assert.is_nil(ok)
    assert.matches("Suspended", msg)
    assert.are.equal(vmrepl.Status.InvalidState, code)
    H.ok(P.a:request_replication_state_change(vm, vmrepl.RequestedState.Replicating))
    assert.are.equal(vmrepl.ReplicationState.Replicating, P.a:get_system(vm).ReplicationState)
    H.ok(P.a:replicate_now(vm))
    ok, msg, code = P.a:request_replication_state_change(vm, 42)
    assert.is_nil(ok)
    assert.matches("not a replication state", msg)
    assert.are.equal(32773, code)
    assert.are.equal(32775, select(3, P.a:request_replication_state_change(vm, vmrepl.RequestedState.Ready)))
  end)

  it("resynchronize sends what changed and leaves the replica equal", function()
    local vm, disk = replicating_vm("web01")
    H.write_at(disk, 9 * MIB, H.bytes(7, 3 * H.BLOCK))
    local job = H.ok(P.a:resynchronize(vm))
    assert.are.equal(vmrepl.JobType.Resynchronizing, job:job_type())
    assert.are.equal(3, job:properties().BlocksSent)
    assert.is_true(H.read(disk) == H.read(P.replica_image(vm)))
    assert.are.equal(vmrepl.ReplicationState.Replicating, P.a:get_system(vm).ReplicationState)
    H.ok(P.a:resynchronize(vm, "20000101000000.000000+000")) -- a past StartTime: now
    local ok, _, code = P.a:resynchronize(vm, "20991231000000.000000+000")
    assert.is_nil(ok)
    assert.are.equal(32773, code)
  end)

  it("remove_replication_relationship returns both VMs to mode None", function()
    local vm = replicating_vm("web01")
    local job = H.ok(P.a:remove_replication_relationship(vm))
    assert.are.equal(vmrepl.JobType.RemoveReplicationRelationship, job:job_type())
    assert.are.equal(vmrepl.ReplicationMode.None, P.a:get_system(vm).ReplicationMode)
    local ok, msg, code = P.a:get_replication_settings(vm)
    assert.is_nil(ok)
    assert.matches("no replication relationship", msg)
    assert.are.equal(32775, code)
  end)

  it("concurrent first relationships into one storage location both succeed", function()
    local jobs = {}
    for k = 1, 2 do
      local vm = assert(P.a:define_system { name = "vm" .. k, disks = { MIB } })
      jobs[k] = assert(P.a:create_replication_relationship(vm, P.settings()))
    end
    for k = 1, 2 do
      local ok, msg, code = jobs[k]:wait(60)
      assert(ok, string.format("relationship %d: %s (%s)", k, msg, code))
    end
  end)

  describe("errors from the engine", function()
    it("InvalidState (32775): methods in the wrong state", function()
      local vm = primary_vm("web01")
      local ok, msg, code = P.a:start_replication(vm, vmrepl.InitialReplicationType.Network)
      assert.is_nil(ok)
      assert.matches("StartReplication needs mode 1", msg)
      assert.are.equal(vmrepl.Status.InvalidState, code)
      for _, call in ipairs({
        function() return P.a:replicate_now(vm) end,
        function() return P.a:resynchronize(vm) end,
        function() return P.a:remove_replication_relationship(vm) end,
        function() return P.a:request_replication_state_change(vm, 7) end,
        function() return P.a:get_replication_settings(vm) end,
        function() return P.a:get_replication_statistics(vm) end,
        function() return P.a:modify_replication_settings(vm, P.settings()) end,
        function() return P.a:list_recovery_points(vm) end,
      }) do
        local r = table.pack(call())
        assert.are.same({ n = 3, nil, r[2], 32775 }, r)
        assert.is_string(r[2])
      end
      H.ok(P.a:create_replication_relationship(vm, P.settings()))
      ok, msg, code = P.a:create_replication_relationship(vm, P.settings())
      assert.is_nil(ok)
      assert.matches("needs a VM without replication", msg)
      assert.are.equal(32775, code)
      ok, msg, code = P.a:replicate_now(vm) -- before the initial replication
      assert.is_nil(ok)
      assert.matches("a cycle needs state 3", msg)
      assert.are.equal(32775, code)
    end)

    it("InvalidParameter (32773): bad settings and arguments, naming the property", function()
      local vm = primary_vm("web01")
      local ok, msg, code = P.a:create_replication_relationship(vm, P.settings { RecoveryServerPortNumber = 0 })
      assert.is_nil(ok)
      assert.matches("RecoveryServerPortNumber", msg)
      assert.are.equal(vmrepl.Status.InvalidParameter, code)
      ok, msg, code = P.a:create_replication_relationship(vm, P.settings { AuthenticationType = 2,
        CertificateThumbPrint = "abcd" })
      assert.is_nil(ok)
      assert.matches("CertificateThumbPrint", msg)
      assert.are.equal(32773, code)
      assert.are.equal(32773, select(3, P.a:create_replication_relationship(vm, "not setting data")))
      assert.are.equal(32773, select(3, P.a:create_replication_relationship(vm, { NoSuchProperty = 1 })))
      assert.are.equal(32776, select(3, P.a:create_replication_relationship(vm,
        P.settings { ReplicationInterval = "often" })))
      H.ok(P.a:create_replication_relationship(vm, P.settings()))
      ok, msg, code = P.a:start_replication(vm, 7)
      assert.is_nil(ok)
      assert.matches("InitialReplicationType", msg)
      assert.are.equal(32773, code)
      assert.are.equal(32770, select(3, P.a:start_replication(vm, vmrepl.InitialReplicationType.Export)))
      assert.are.equal(32773, select(3, P.a:start_replication(vm, 1, "/tmp/export")))
      assert.are.equal(32773, select(3, P.a:start_replication(vm, 1, nil, "20991231000000.000000+000")))
      assert.are.equal(32776, select(3, P.a:start_replication(vm, 1, nil, "garbage")))
      H.ok(P.a:start_replication(vm, 1, nil, "20000101000000.000000+000")) -- a past StartTime: now
    end)

    it("FileNotFound (32779): an unknown VM, for every VM method", function()
      for _, call in ipairs({
        function() return P.a:create_replication_relationship("nope", P.settings()) end,
        function() return P.a:start_replication("nope", 1) end,
        function() return P.a:modify_replication_settings("nope", P.settings()) end,
        function() return P.a:remove_replication_relationship("nope") end,
        function() return P.a:request_replication_state_change("nope", 7) end,
        function() return P.a:resynchronize("nope") end,
        function() return P.a:replicate_now("nope") end,
        function() return P.a:get_replication_statistics("nope") end,
        function() return P.a:get_replication_settings("nope") end,
        function() return P.b:list_recovery_points("11111111-2222-3333-4444-555555555555") end,
        function() return P.a:get_system("nope") end,
        function() return P.a:destroy_system("nope") end,
        function() return P.a:request_state_change("nope", 2) end,
        function() return P.a:disk_path("nope") end,
        function() return P.a:compute_digest("nope") end,
      }) do
        local ok, msg, code = call()
        assert.is_nil(ok)
        assert.matches("no virtual machine", msg)
        assert.are.equal(vmrepl.Status.FileNotFound, code)
      end
    end)

    it("AccessDenied (32769): an unauthorized primary's job fails, returned by job:wait", function()
      local c = assert(vmrepl.open("local:" .. P.dir .. "/c",
        { host_name = "hv-c", listen = "127.0.0.1:0", hosts = { ["hv-b"] = "127.0.0.1" } }))
      local vm = assert(c:define_system { name = "intruder", disks = { 1 * MIB } })
      local job = assert(c:create_replication_relationship(vm, P.settings()))
      local ok, msg, code = job:wait(60)
      assert.is_nil(ok)
      assert.is_string(msg)
      assert.are.equal(vmrepl.Status.AccessDenied, code)
      assert.are.equal(vmrepl.JobState.Exception, job:state())
      assert.are.equal(32769, job:error_code())
      assert.are.equal(msg, job:properties().ErrorDescription)
      assert.are.equal(vmrepl.ReplicationMode.None, c:get_system(vm).ReplicationMode)
      assert.are.equal(32779, select(3, P.b:get_system(vm.Name))) -- nothing was created on hv-b
      -- TestReplicationConnection asks hv-b too.
      ok, msg, code = assert(c:test_replication_connection("hv-b", P.port, 1)):wait(60)
      assert.is_nil(ok)
      assert.matches("hv-c", msg, 1, true)
      assert.are.equal(vmrepl.Status.AccessDenied, code)
      c:close()
    end)
  end)
end)
