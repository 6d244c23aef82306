-- Bandwidth limits (ABI 4): svc:set_bandwidth_limit(bytes_per_s [, vm]) and
-- svc:bandwidth_limit([vm]), of a whole service and of a replication relationship, between two
-- in-process services on 127.0.0.1 (hv-a primary, hv-b recovery server).
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

local MIB = 1 << 20

describe("bandwidth limits", function()
  local P
  before_each(function() P = H.pair() end)
  after_each(function() P.close() end)

  it("set and read the service's limit and a relationship's, on both sides", function()
    assert.are.equal(0, P.a:bandwidth_limit()) -- none by default
    assert.is_true(P.a:set_bandwidth_limit(8 * MIB))
    assert.are.equal(8 * MIB, P.a:bandwidth_limit())
    assert.are.equal(0, P.b:bandwidth_limit()) -- one per service

    local vm = assert(P.a:define_system { name = "web01", disks = { 4 * MIB } })
    local disk = assert(P.a:disk_path(vm))
    for k = 0, 3 do H.write_at(disk, k * MIB, H.bytes(k + 1, H.BLOCK)) end
    H.ok(P.a:create_replication_relationship(vm, P.settings()))
    assert.are.equal(0, P.a:bandwidth_limit(vm))
    assert.is_true(P.a:set_bandwidth_limit(4 * MIB, vm))
    assert.are.equal(4 * MIB, P.a:bandwidth_limit(vm))
    assert.are.equal(4 * MIB, P.a:bandwidth_limit("web01"))
    assert.are.equal(8 * MIB, P.a:bandwidth_limit(nil)) -- the service's is unchanged
    assert.is_true(P.b:set_bandwidth_limit(H.BLOCK, vm.Name)) -- the replica's relationship
    assert.are.equal(H.BLOCK, P.b:bandwidth_limit(vm.Name))

    -- The initial replication runs under the smaller of both limits, and says so.
    local job = H.ok(P.a:start_replication(vm, vmrepl.InitialReplicationType.Network))
    assert.are.equal(4 * MIB, job:properties().BandwidthLimit)
    assert.is_true(job:properties().RateBytesPerSecond > 0)

    -- 0 removes a limit.
    assert.is_true(P.a:set_bandwidth_limit(0, vm))
    assert.is_true(P.a:set_bandwidth_limit(0))
    assert.are.equal(0, P.a:bandwidth_limit(vm))
    assert.are.equal(0, P.a:bandwidth_limit())
  end)

  it("the engine's refusals return nil, message, code", function()
    local vm = assert(P.a:define_system { name = "web01", disks = { MIB } })
    local ok, msg, code = P.a:set_bandwidth_limit(1000) -- under one block per second
    assert.is_nil(ok)
    assert.matches("1000", msg, 1, true)
    assert.are.equal(vmrepl.Status.InvalidParameter, code)
    ok, msg, code = P.a:set_bandwidth_limit(8 * MIB, vm) -- no relationship
    assert.is_nil(ok)
    assert.matches("no replication relationship", msg, 1, true)
    assert.are.equal(vmrepl.Status.InvalidState, code)
    ok, msg, code = P.a:bandwidth_limit("ghost")
    assert.is_nil(ok)
    assert.matches("ghost", msg, 1, true)
    assert.are.equal(vmrepl.Status.FileNotFound, code)
    assert.are.equal(32779, select(3, P.a:set_bandwidth_limit(8 * MIB, "ghost")))
    assert.are.equal(32773, select(3, P.a:set_bandwidth_limit(8 * MIB, ""))) -- "" is no VM
    assert.are.equal(0, P.a:bandwidth_limit()) -- nothing changed
  end)

  it("misuse raises", function()
    local a = P.a
    assert.matches("(integer expected, got no value)", H.raises(a.set_bandwidth_limit, a), 1, true)
    assert.matches("(integer expected, got string)", H.raises(a.set_bandwidth_limit, a, "8M"), 1, true)
    assert.matches("bytes_per_s must be an integer", H.raises(a.set_bandwidth_limit, a, 1.5), 1, true)
    assert.matches("bytes_per_s -1 is out of range", H.raises(a.set_bandwidth_limit, a, -1), 1, true)
    assert.matches("VM name, GUID, object path or vmrepl.Instance expected, got number",
      H.raises(a.set_bandwidth_limit, a, 8 * MIB, 42), 1, true)
    assert.matches("VM name, GUID, object path or vmrepl.Instance expected, got table",
      H.raises(a.bandwidth_limit, a, {}), 1, true)
    assert.matches("Msvm_ComputerSystem is needed", H.raises(a.bandwidth_limit, a, a:info()), 1, true)
    local svc, dir = H.service()
    svc:close()
    assert.matches("vmrepl.Service is closed", H.raises(svc.set_bandwidth_limit, svc, 0), 1, true)
    assert.matches("vmrepl.Service is closed", H.raises(svc.bandwidth_limit, svc), 1, true)
    H.rmrf(dir)
  end)
end)
