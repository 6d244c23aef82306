-- Services and VMs: open/close, info, define/get/list/destroy, state changes, disk paths.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

describe("vmrepl.open", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmrf(dir) end)

  it("opens an in-process engine with options from a table", function()
    local svc = assert(vmrepl.open("local:" .. dir .. "/a", { host_name = "hv-a", block_size = 65536,
      hash = "sha256", job_retention_s = 60 }))
    assert.are.equal("vmrepl.Service (local:" .. dir .. "/a)", tostring(svc))
    assert.are.equal("local:" .. dir .. "/a", svc:uri())
    assert.is_false(svc:closed())
    local info = svc:info()
    assert.are.equal("Msvm_ReplicationService", info:class_name())
    assert.are.equal("hv-a", info.HostName)
    assert.are.equal(dir .. "/a", info.HostRoot)
    assert.are.equal(vmrepl.version(), info.Version)
    assert.are.equal("sha256", info.HashAlgorithm)
    assert.are.equal(65536, info.BlockSize)
    assert.are.equal(60, info.JobRetentionSeconds)
    assert.are.equal(0, info.ListenPort) -- no listener asked for
    svc:close()
  end)

  it("takes options as JSON text, or none", function()
    local a = assert(vmrepl.open("local:" .. dir .. "/a", '{"host_name": "hv-json"}'))
    assert.are.equal("hv-json", a:info().HostName)
    a:close()
    local b = assert(vmrepl.open("local:" .. dir .. "/b"))
    assert.is_string(b:info().HostName)
    b:close()
  end)

  it("listens when asked: ListenPort is the port", function()
    local svc = assert(vmrepl.open("local:" .. dir .. "/a", { host_name = "hv-a", listen = "127.0.0.1:0" }))
    local port = svc:info().ListenPort
    assert.is_true(port > 0 and port < 65536)
    svc:close()
  end)

  it("returns nil, message, code on failure", function()
    local function fails(code, pattern, ...)
      local r = table.pack(vmrepl.open(...))
      assert.are.equal(3, r.n)
      assert.is_nil(r[1])
      assert.matches(pattern, r[2])
      assert.are.equal(code, r[3])
    end
    fails(32773, "unknown URI", "nope:" .. dir)
    fails(32773, "absolute path", "local:relative/root")
    fails(32777, "no such file", "unix:/run/vmrepl-none.sock") -- no vmrepld there
    fails(32773, "unknown option 'bogus'", "local:" .. dir .. "/a", { bogus = 1 })
    fails(32776, "host_name must be a string", "local:" .. dir .. "/a", { host_name = 5 })
    fails(32773, "not valid JSON", "local:" .. dir .. "/a", "{")
    -- One engine per host root (the lock is held by the first).
    local svc = assert(vmrepl.open("local:" .. dir .. "/a", { host_name = "hv-a" }))
    fails(32774, "in use", "local:" .. dir .. "/a", { host_name = "hv-a" })
    svc:close()
    assert(vmrepl.open("local:" .. dir .. "/a", { host_name = "hv-a" })):close() -- released by close()
  end)

  it("gives a descriptor for event loops; dispatch with nothing pending is empty", function()
    local svc = assert(vmrepl.open("local:" .. dir .. "/a", { host_name = "hv-a" }))
    local fd = svc:fd()
    assert.is_true(math.type(fd) == "integer" and fd >= 0)
    assert.are.same({}, svc:dispatch())
    svc:close()
  end)

  it("closes once: close() is idempotent and the closed service raises cleanly", function()
    local svc = assert(vmrepl.open("local:" .. dir .. "/a", { host_name = "hv-a" }))
    svc:close()
    svc:close()
    assert.is_true(svc:closed())
    assert.are.equal("vmrepl.Service (closed)", tostring(svc))
    assert.are.equal("local:" .. dir .. "/a", svc:uri())
    for _, call in ipairs({
      function() return svc:info() end,
      function() return svc:fd() end,
      function() return svc:dispatch() end,
      function() return svc:list_systems() end,
      function() return svc:get_system("x") end,
      function() return svc:compute_digest("x") end,
    }) do
      assert.matches("vmrepl.Service is closed", H.raises(call), 1, true)
    end
  end)
end)

describe("virtual machines", function()
  local svc, dir
  before_each(function() svc, dir = H.service({ host_name = "hv-t" }) end)
  after_each(function()
    svc:close()
    H.rmrf(dir)
  end)

  it("define_system makes a VM with sparse raw disks", function()
    local vm = assert(svc:define_system { name = "web01", disks = { 1 << 20, 2 << 20 } })
    assert.are.equal("Msvm_ComputerSystem", vm:class_name())
    assert.are.equal("web01", vm.ElementName)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", vm.Name)
    assert.are.same({ 1 << 20, 2 << 20 }, vm.DiskSizes)
    assert.are.equal(2, #vm.DiskPaths)
    assert.are.equal(vmrepl.EnabledState.Off, vm.EnabledState)
    assert.are.equal(vmrepl.ReplicationMode.None, vm.ReplicationMode)
    assert.are.equal(vmrepl.ReplicationState.Disabled, vm.ReplicationState)
    assert.are.equal(1 << 20, H.size(vm.DiskPaths[1]))
    assert.are.equal(2 << 20, H.size(assert(svc:disk_path(vm, 1))))
  end)

  it("define_system takes an id", function()
    local id = "11111111-2222-3333-4444-555555555555"
    local vm = assert(svc:define_system { name = "db01", disks = { 4096 }, id = id })
    assert.are.equal(id, vm.Name)
  end)

  it("define_system returns the engine's refusals", function()
    assert(svc:define_system { name = "web01", disks = { 4096 } })
    local function refused(code, pattern, def)
      local ok, msg, c = svc:define_system(def)
      assert.is_nil(ok)
      assert.matches(pattern, msg)
      assert.are.equal(code, c)
    end
    refused(32773, "already exists", { name = "web01", disks = { 4096 } })
    refused(32773, "0 disks", { name = "e", disks = {} })
    refused(32773, "not a multiple of 4096", { name = "o", disks = { 1000 } })
    refused(32773, "not a GUID", { name = "i", disks = { 4096 }, id = "nope" })
  end)

  it("get_system finds a VM by name, GUID, object path or Instance", function()
    local vm = assert(svc:define_system { name = "web01", disks = { 4096 } })
    for _, key in ipairs({ "web01", vm.Name, vm.Name:lower(), vm.Path, vm }) do
      local got = assert(svc:get_system(key))
      assert.are.equal(vm.Name, got.Name)
    end
    local ok, msg, code = svc:get_system("nope")
    assert.is_nil(ok)
    assert.matches("no virtual machine", msg)
    assert.are.equal(vmrepl.Status.FileNotFound, code)
  end)

  it("list_systems lists every VM", function()
    assert.are.same({}, svc:list_systems())
    for _, n in ipairs({ "a", "b", "c" }) do assert(svc:define_system { name = n, disks = { 4096 } }) end
    local names = {}
    for _, vm in ipairs(svc:list_systems()) do names[#names + 1] = vm.ElementName end
    table.sort(names)
    assert.are.same({ "a", "b", "c" }, names)
  end)

  it("request_state_change turns a VM on and off; a running VM cannot be destroyed", function()
    local vm = assert(svc:define_system { name = "web01", disks = { 4096 } })
    assert.is_true(svc:request_state_change(vm, vmrepl.EnabledState.Running))
    assert.are.equal(2, svc:get_system(vm).EnabledState)
    local ok, msg, code = svc:destroy_system(vm)
    assert.is_nil(ok)
    assert.matches("running", msg)
    assert.are.equal(vmrepl.Status.SystemInUse, code)
    ok, msg, code = svc:request_state_change(vm, 9)
    assert.is_nil(ok)
    assert.are.equal(vmrepl.Status.InvalidParameter, code)
    assert.is_true(svc:request_state_change("web01", vmrepl.EnabledState.Off))
    assert.are.equal(3, svc:get_system(vm).EnabledState)
  end)

  it("destroy_system deletes the VM and its disks", function()
    local vm = assert(svc:define_system { name = "web01", disks = { 4096 } })
    local path = assert(svc:disk_path(vm))
    assert.is_true(svc:destroy_system(vm))
    assert.is_nil(io.open(path, "rb"))
    local ok, _, code = svc:destroy_system(vm)
    assert.is_nil(ok)
    assert.are.equal(32779, code)
    assert.are.equal(32779, select(3, svc:get_system("web01")))
  end)

  it("disk_path gives the raw image of a disk (0 by default)", function()
    local vm = assert(svc:define_system { name = "web01", disks = { 8192 } })
    local p0 = assert(svc:disk_path(vm))
    assert.are.equal(p0, svc:disk_path(vm, 0))
    assert.are.equal(vm.DiskPaths[1], p0)
    H.write_at(p0, 4096, "hello")
    assert.are.equal("hello", H.read(p0):sub(4097, 4101))
    local ok, msg, code = svc:disk_path(vm, 5)
    assert.is_nil(ok)
    assert.matches("disk 5 does not exist", msg)
    assert.are.equal(32773, code)
    assert.are.equal(32779, select(3, svc:disk_path("nope", 0)))
  end)
end)
