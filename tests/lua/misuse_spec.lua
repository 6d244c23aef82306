-- Misuse never crashes: wrong argument types, out-of-range numbers, closed handles and wrong
-- `self` each raise a clean Lua error ("bad argument ..."), never a failure triple.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

-- Calls fn(...) and checks that it raised an error matching `pattern` (plain text).
local function bad(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error matching '" .. pattern .. "', got success")
  assert.is_string(err)
  assert.matches(pattern, err, 1, true)
  return err
end

describe("misuse", function()
  local svc, dir, vm, job, inst
  before_each(function()
    svc, dir = H.service({ host_name = "hv-t" })
    vm = assert(svc:define_system { name = "web01", disks = { 1 << 20 } })
    job = H.ok(svc:compute_digest(vm))
    inst = svc:info()
  end)
  after_each(function()
    svc:close()
    H.rmrf(dir)
  end)

  it("vmrepl.open: the uri is a string, the options a table or JSON text", function()
    bad("(string expected, got no value)", function() return vmrepl.open() end)
    bad("(string expected, got number)", function() return vmrepl.open(42) end)
    bad("(string expected, got table)", vmrepl.open, {})
    bad("(table of options expected, got number)",
      function() return vmrepl.open("local:" .. dir .. "/x", 1) end)
    bad("(a function cannot be written as JSON (at hosts.f))", vmrepl.open, "local:" .. dir .. "/x",
      { hosts = { f = print } })
    bad("a table must be an array (keys 1..n) or have only string keys", vmrepl.open, "local:" .. dir .. "/x",
      { 1, x = 2 })
  end)

  it("every service method with wrong argument types", function()
    local S = "(VM name, GUID, object path or vmrepl.Instance expected"
    local cases = {
      { "get_system", S .. ", got nil)" },
      { "get_system", S .. ", got number)", 42 },
      { "get_system", S .. ", got table)", {} },
      { "get_system", S .. ", got boolean)", true },
      { "get_system", S .. ", got light userdata)", vmrepl.null },
      { "get_system", "Msvm_ComputerSystem is needed, not Msvm_ConcreteJob", job:properties() },
      { "get_system", S .. ", got vmrepl.Job)", job },
      { "destroy_system", S, 1.5 },
      { "disk_path", S, nil, 0 },
      { "disk_path", "(integer expected, got string)", vm, "0" },
      { "disk_path", "disk must be an integer", vm, 0.5 },
      { "disk_path", "disk -1 is out of range", vm, -1 },
      { "disk_path", "out of range", vm, 1 << 40 },
      { "compute_digest", S },
      { "disk_mark_dirty", S, 5, 0, 0, 1 },
      { "disk_mark_dirty", "(integer expected, got nil)", vm },
      { "disk_mark_dirty", "offset -1 is out of range", vm, 0, -1, 1 },
      { "disk_mark_dirty", "length must be an integer", vm, 0, 0, 0.5 },
      { "request_state_change", "(integer expected, got nil)", vm },
      { "request_state_change", "state 70000 is out of range (0..65535)", vm, 70000 },
      { "request_state_change", "state -1 is out of range", vm, -1 },
      { "get_job", "(string expected, got number)", 7 },
      { "get_job", "(string expected, got nil)" },
      { "create_replication_relationship", S, nil, {} },
      { "create_replication_relationship", "(setting data (table, text or vmrepl.Instance) expected, got nil)", vm },
      { "create_replication_relationship", "(setting data (table, text or vmrepl.Instance) expected, got number)", vm, 5 },
      { "create_replication_relationship", "a function cannot be written as JSON (at f)", vm, { f = print } },
      { "create_replication_relationship", "array (keys 1..n) or have only string keys", vm, { 1, a = 2 } },
      { "create_replication_relationship", "inf and nan cannot be written as JSON (at x)", vm, { x = 0 / 0 } },
      { "create_replication_relationship", "(setting data (table, text or vmrepl.Instance) expected, got vmrepl.Job)", vm, job },
      { "start_replication", "type 70000 is out of range", vm, 70000 },
      { "start_replication", "(integer expected, got string)", vm, "network" },
      { "start_replication", "(string expected, got number)", vm, 1, 5 },
      { "start_replication", "(string expected, got boolean)", vm, 1, nil, true },
      { "modify_replication_settings", "expected, got nil)", vm },
      { "remove_replication_relationship", S, 3 },
      { "request_replication_state_change", "(integer expected, got nil)", vm, nil },
      { "request_replication_state_change", "out of range", vm, 1 << 20 },
      { "resynchronize", "(string expected, got number)", vm, 20000101 },
      { "replicate_now", S, {} },
      { "test_replication_connection", "(string expected, got nil)" },
      { "test_replication_connection", "(integer expected, got nil)", "hv-b" },
      { "test_replication_connection", "port 65536 is out of range", "hv-b", 65536 },
      { "test_replication_connection", "authentication_type -2 is out of range", "hv-b", 80, -2 },
      { "test_replication_connection", "(string expected, got table)", "hv-b", 80, 2, {} },
      { "get_replication_statistics", S, 0 },
      { "get_replication_settings", S },
      { "list_recovery_points", S, false },
      { "modify_service_settings", "expected, got nil)" },
      { "modify_service_settings", "expected, got function)", print },
      { "add_authorization_entry", "expected, got boolean)", false },
      { "modify_authorization_entry", "expected, got nil)" },
      { "remove_authorization_entry", "(string expected, got nil)" },
      { "remove_authorization_entry", "(string expected, got number)", 1 },
    }
    for _, case in ipairs(cases) do
      local name, pattern = case[1], case[2]
      bad(pattern, svc[name], svc, table.unpack(case, 3, 6))
    end
    -- Called as methods, the errors name the method and count arguments after self.
    bad("bad argument #1 to 'get_system' (VM name, GUID, object path or vmrepl.Instance expected, got number)",
      function() return svc:get_system(42) end)
    bad("bad argument #2 to 'disk_path' (disk -1 is out of range (0..4294967295))",
      function() return svc:disk_path(vm, -1) end)
    bad("bad argument #2 to 'create_replication_relationship' (a function cannot be written as JSON (at f))",
      function() return svc:create_replication_relationship(vm, { f = print }) end)
    bad("bad argument #1 to 'define_system' (table expected, got no value)", function() return svc:define_system() end)
    bad("bad argument #1 to 'wait' (number of seconds expected, got string)", function() return job:wait("10") end)
    bad("bad argument #1 to 'type' (string expected, got no value)", function() return inst:type() end)
    bad("bad argument #1 to 'info' (vmrepl.Service expected, got table)", function() return svc.info({}) end)
    local impostor = { info = svc.info }
    bad("calling 'info' on bad self (vmrepl.Service expected, got table)", function() return impostor:info() end)
  end)

  it("define_system checks its table", function()
    bad("(table expected, got no value)", svc.define_system, svc)
    bad("(table expected, got string)", svc.define_system, svc, "web01")
    bad("field 'name' must be a string", svc.define_system, svc, { disks = { 4096 } })
    bad("field 'name' must be a string", svc.define_system, svc, { name = 5, disks = { 4096 } })
    bad("field 'disks' must be an array", svc.define_system, svc, { name = "x" })
    bad("field 'disks' must be an array", svc.define_system, svc, { name = "x", disks = 4096 })
    bad("disks[1] must be a size in bytes", svc.define_system, svc, { name = "x", disks = { "4096" } })
    bad("disks[2] must be a size in bytes", svc.define_system, svc, { name = "x", disks = { 4096, -1 } })
    bad("disks[1] must be a size in bytes", svc.define_system, svc, { name = "x", disks = { 4096.5 } })
    bad("field 'id' must be a GUID string", svc.define_system, svc, { name = "x", disks = { 4096 }, id = 1 })
    bad("unknown field 'disk' (name, disks, id)", svc.define_system, svc, { name = "x", disk = { 4096 } })
    bad("unknown field '1'", svc.define_system, svc, { "x", name = "x", disks = { 4096 } })
  end)

  it("job methods with wrong arguments", function()
    bad("(number of seconds expected, got string)", job.wait, job, "10")
    bad("timeout must be >= 0 seconds", job.wait, job, -1)
    bad("timeout must be >= 0 seconds", job.wait, job, 0 / 0)
    bad("(function expected, got number)", job.on_progress, job, 5)
    assert.is_true(job:wait(math.huge))
  end)

  it("instance methods with wrong arguments", function()
    bad("(string expected, got no value)", inst.type, inst)
    bad("(string expected, got number)", inst.type, inst, 3)
  end)

  it("wrong self: another type, a table, nil", function()
    for _, name in ipairs({ "info", "list_systems", "fd", "dispatch", "close", "closed", "get_system" }) do
      local m = svc[name]
      bad("vmrepl.Service expected, got no value", m)
      bad("vmrepl.Service expected, got vmrepl.Job", m, job)
      bad("vmrepl.Service expected, got table", m, {})
      bad("vmrepl.Service expected, got number", m, 1)
    end
    for _, name in ipairs({ "wait", "state", "progress", "properties", "cancel", "id", "close", "service" }) do
      bad("vmrepl.Job expected, got vmrepl.Service", job[name], svc)
      bad("vmrepl.Job expected, got nil", job[name], nil)
    end
    for _, name in ipairs({ "to_json", "to_cim_xml", "to_mof", "to_table", "names", "class_name", "close" }) do
      bad("vmrepl.Instance expected, got vmrepl.Job", inst[name], job)
      bad("vmrepl.Instance expected, got string", inst[name], "x")
    end
  end)

  it("every service method on a closed service", function()
    local methods = {
      "info", "define_system", "get_system", "list_systems", "destroy_system", "request_state_change",
      "disk_path", "disk_mark_dirty", "compute_digest", "get_job", "list_jobs", "create_replication_relationship",
      "start_replication", "modify_replication_settings", "remove_replication_relationship",
      "request_replication_state_change", "resynchronize", "replicate_now", "test_replication_connection",
      "get_replication_statistics", "get_replication_settings", "list_recovery_points",
      "modify_service_settings", "get_service_settings", "add_authorization_entry",
      "modify_authorization_entry", "remove_authorization_entry", "list_authorization_entries", "fd", "dispatch",
    }
    svc:close()
    for _, name in ipairs(methods) do
      assert.is_function(svc[name], name)
      bad("vmrepl.Service is closed", svc[name], svc, vm, 1, "x")
    end
    -- close, closed, uri and tostring still answer.
    svc:close()
    assert.is_true(svc:closed())
    assert.are.equal("vmrepl.Service (closed)", tostring(svc))
  end)

  it("closed jobs and instances", function()
    job:close()
    for _, name in ipairs({ "wait", "state", "done", "error_code", "progress", "properties", "cancel", "id", "name",
      "job_type", "on_progress" }) do
      bad("vmrepl.Job is closed", job[name], job, 1)
    end
    inst:close()
    for _, name in ipairs({ "to_json", "to_cim_xml", "to_mof", "type" }) do
      bad("vmrepl.Instance is closed", inst[name], inst, "x")
    end
    -- A closed Instance is no setting data.
    bad("vmrepl.Instance is closed", svc.modify_service_settings, svc, inst)
  end)

  it("methods are not properties: unknown methods are nil, instances are read-only", function()
    assert.is_nil(svc.no_such_method)
    assert.is_nil(job.no_such_method)
    assert.is_nil(inst.no_such_property)
    bad("attempt to call a nil value", function() return svc:no_such_method() end)
    bad("read-only", function() inst.HostName = "x" end)
  end)

  it("the service stays usable after all that", function()
    assert.are.equal("web01", svc:get_system(vm).ElementName)
    H.ok(svc:compute_digest(vm))
  end)
end)
