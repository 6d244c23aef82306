-- Instances: field access with the spec's property names, arrays, serialisations, lifetime.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

describe("instances", function()
  local svc, dir, vm
  before_each(function()
    svc, dir = H.service({ host_name = "hv-t" })
    vm = assert(svc:define_system { name = "web01", disks = { 1 << 20, 2 << 20 } })
  end)
  after_each(function()
    svc:close()
    H.rmrf(dir)
  end)

  it("reads properties by name with their Lua types", function()
    assert.is_string(vm.Name)                          -- string
    assert.are.equal("integer", math.type(vm.EnabledState)) -- uint16
    assert.is_string(vm.InstallDate)                   -- datetime: the CIM text
    assert.matches("^%d+%.%d+[%+%-]%d+$", vm.InstallDate)
    assert.are.same({ "OK" }, vm.StatusDescriptions)  -- string[] (typed getter)
    assert.are.same({ 1 << 20, 2 << 20 }, vm.DiskSizes) -- uint64[] (from JSON)
    local info = svc:info()
    assert.is_false(info.RecoveryServerEnabled)        -- boolean
    assert.are.same({ 2 }, info.OperationalStatus)
    assert.is_nil(info.CertificateThumbPrint)          -- null
    assert.is_nil(vm.NoSuchProperty)
  end)

  it("names() lists every property in order, nulls included; type() tells CIM types", function()
    local info = svc:info()
    local names = info:names()
    assert.are.equal("Name", names[1])
    local has = {}
    for _, n in ipairs(names) do has[n] = true end
    assert.is_true(has.CertificateThumbPrint)
    local t, is_array, is_null = info:type("CertificateThumbPrint")
    assert.are.equal(vmrepl.CimType.String, t)
    assert.is_false(is_array)
    assert.is_true(is_null)
    t, is_array, is_null = vm:type("DiskSizes")
    assert.are.equal(vmrepl.CimType.UInt64, t)
    assert.is_true(is_array)
    assert.is_false(is_null)
    assert.are.equal(vmrepl.CimType.UInt16, (vm:type("ReplicationState")))
    assert.are.equal(vmrepl.CimType.DateTime, (vm:type("InstallDate")))
    local ok, msg, code = vm:type("Nope")
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.are.equal(vmrepl.Status.InvalidParameter, code)
  end)

  it("pairs() and to_table() give the non-null properties", function()
    local n, copy = 0, {}
    for k, v in pairs(vm) do
      n = n + 1
      copy[k] = v
    end
    assert.are.same(copy, vm:to_table())
    assert.are.equal("web01", copy.ElementName)
    assert.is_true(n >= 10)
    local t = vm:to_table()
    t.ElementName = "changed" -- a copy: the instance is unaffected
    assert.are.equal("web01", vm.ElementName)
  end)

  it("is read-only", function()
    assert.matches("read%-only", H.raises(function() vm.ElementName = "x" end))
    assert.matches("read%-only", H.raises(function() vm.NewProperty = 1 end))
  end)

  it("serialises to JSON, CIM-XML and MOF", function()
    local json = assert(vm:to_json())
    local t = vmrepl.json_decode(json)
    assert.are.equal("Msvm_ComputerSystem", t.__CLASS)
    for k, v in pairs(vm) do assert.are.same(v, t[k], k) end
    local xml = assert(vm:to_cim_xml())
    assert.matches('<INSTANCE CLASSNAME="Msvm_ComputerSystem"', xml, 1, true)
    assert.matches(vm.Name, xml, 1, true)
    local mof = assert(vm:to_mof())
    assert.matches("^instance of Msvm_ComputerSystem", mof)
    assert.matches('ElementName = "web01";', mof, 1, true)
  end)

  it("has a class name and a tostring", function()
    assert.are.equal("Msvm_ComputerSystem", vm:class_name())
    assert.are.equal("vmrepl.Instance (Msvm_ComputerSystem " .. vm.Name .. ")", tostring(vm))
    assert.are.equal("vmrepl.Instance (Msvm_ReplicationServiceSettingData)", tostring(svc:get_service_settings()))
  end)

  it("close() releases the handle: values stay readable, serialisations raise", function()
    local name = vm.Name
    vm:close()
    vm:close()
    assert.are.equal("vmrepl.Instance (closed)", tostring(vm))
    assert.are.equal(name, vm.Name)
    assert.are.equal("Msvm_ComputerSystem", vm:class_name())
    for _, m in ipairs({ "to_json", "to_cim_xml", "to_mof", "type" }) do
      assert.matches("vmrepl.Instance is closed", H.raises(vm[m], vm, "Name"), 1, true)
    end
    -- A closed VM instance still names its VM.
    assert.are.equal(name, assert(svc:get_system(vm)).Name)
  end)

  it("items of a list outlive the list", function()
    assert(svc:define_system { name = "db01", disks = { 4096 } })
    local items = svc:list_systems()
    local first = items[1]
    items = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_string(first:to_json())
    assert.matches("^instance of", first:to_mof())
    first:close()
    collectgarbage()
    local again = svc:list_systems()
    for _, it_ in ipairs(again) do it_:close() end
    collectgarbage()
    assert.are.equal(2, #svc:list_systems())
  end)

  it("an Instance is accepted as setting data (its JSON)", function()
    local settings = svc:get_service_settings()
    H.ok(svc:modify_service_settings(settings))
    assert.are.same(settings:to_table(), svc:get_service_settings():to_table())
  end)

  it("an Instance of another class is not a VM", function()
    assert.matches("Msvm_ComputerSystem is needed", H.raises(svc.get_system, svc, svc:info()))
  end)
end)
