-- A sweep over every function of the module, every Service, Job and Instance method: each called
-- with each wrong value (nil, numbers for strings, NaN, tables, functions, closed handles, ...)
-- as self and in each argument position. None may crash the process (under ASan, none may touch
-- freed or out-of-bounds memory): each call raises a clean Lua error (a string naming the
-- argument), or — where the value happens to be acceptable — returns a result or nil, message,
-- code. The focused checks of each message are in misuse_spec.lua.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

local function names(t)
  local out = {}
  for k, v in pairs(t) do
    if type(v) == "function" then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

describe("misuse sweep", function()
  local svc, dir, vm, job, inst, closed_svc, closed_job, closed_inst, values

  before_each(function()
    svc, dir = H.service({ host_name = "hv-t" })
    vm = assert(svc:define_system { name = "web01", disks = { 1 << 20 } })
    job = H.ok(svc:compute_digest(vm))
    inst = svc:info()
    closed_job = H.ok(svc:compute_digest(vm))
    closed_job:close()
    closed_inst = svc:info()
    closed_inst:close()
    local cdir
    closed_svc, cdir = H.service({ host_name = "hv-c" })
    closed_svc:close()
    H.rmrf(cdir)
    values = {
      { "nil", nil }, { "integer", 42 }, { "negative", -1 }, { "huge", 1 << 62 }, { "float", 1.5 },
      { "nan", 0 / 0 }, { "inf", math.huge }, { "empty string", "" }, { "table", {} },
      { "nested table", { { {} }, x = { f = 1 } } }, { "boolean", true }, { "function", print },
      { "null", vmrepl.null }, { "coroutine", coroutine.create(print) }, { "closed service", closed_svc },
      { "closed job", closed_job }, { "closed instance", closed_inst }, { "io file", io.stderr },
    }
  end)
  after_each(function()
    vmrepl.set_scheduler(nil)
    svc:close()
    H.rmrf(dir)
  end)

  -- Calls fn(...) in protected mode: a raised error must be a non-empty string.
  local function try(label, fn, ...)
    local r = table.pack(pcall(fn, ...))
    if not r[1] then
      assert(type(r[2]) == "string" and #r[2] > 0, label .. ": raised a non-string: " .. tostring(r[2]))
    end
    return r
  end

  -- The methods table of a userdata (an Instance's __index is a function over it: property
  -- first, then methods; the table is its first upvalue, as zz_coverage_spec.lua reads it).
  local function methods(obj)
    local index = getmetatable(obj).__index
    if type(index) == "function" then index = select(2, debug.getupvalue(index, 1)) end
    return index
  end

  -- Every method of `obj` with each value as self and in argument positions 1..3.
  local function sweep(kind, obj, skip)
    local n = 0
    for _, name in ipairs(names(methods(obj))) do
      if not (skip and skip[name]) then
        local m = methods(obj)[name]
        for _, v in ipairs(values) do
          local label = string.format("%s.%s with %s", kind, name, v[1])
          if v[2] ~= obj then
            try(label .. " as self", m, v[2])
          end
          for pos = 1, 3 do
            local args = { n = pos }
            args[pos] = v[2]
            try(label .. " at #" .. pos, m, obj, table.unpack(args, 1, args.n))
            n = n + 1
          end
          try(label .. " everywhere", m, obj, v[2], v[2], v[2], v[2])
        end
      end
    end
    return n
  end

  it("every Service method", function()
    -- close (and closed/uri) take nothing; closing the service here would end the sweep early.
    local n = sweep("Service", svc, { close = true })
    assert.is_true(n > 40 * #values)
    -- Still usable, and the VM is still there (no wrong value destroyed or changed it).
    assert.are.equal("web01", assert(svc:get_system(vm)).ElementName)
    assert.is_true(H.ok(svc:compute_digest(vm)):done())
  end)

  it("every Job method", function()
    sweep("Job", job, { close = true, cancel = true })
    for _, v in ipairs(values) do try("Job.cancel", job.cancel, job, v[2]) end
    assert.is_true(job:done())
    assert.are.equal(vmrepl.JobState.Completed, job:state())
  end)

  it("every Instance method", function()
    sweep("Instance", inst, { close = true })
    assert.is_string(inst:to_json())
  end)

  it("every module function", function()
    for _, name in ipairs(names(vmrepl)) do
      local f = vmrepl[name]
      for _, v in ipairs(values) do
        for pos = 1, 3 do
          local args = { n = pos }
          args[pos] = v[2]
          try(string.format("vmrepl.%s with %s at #%d", name, v[1], pos), f, table.unpack(args, 1, args.n))
          if name == "set_scheduler" then vmrepl.set_scheduler(nil) end
        end
      end
    end
    -- Still a working module.
    assert.are.equal("InvalidState", vmrepl.status_name(32775))
    assert.are.same({ a = 1 }, vmrepl.json_decode(vmrepl.json_encode({ a = 1 })))
  end)
end)
