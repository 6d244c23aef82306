-- Every function of the C header is called by the module, and every method and module
-- function of the binding is exercised by a spec file (as `:name(`, `.name` or "name").
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

local root = os.getenv("VMREPL_SOURCE_DIR") or "."

local function read(rel)
  return H.read(root .. "/" .. rel)
end

local function spec_text()
  local p = assert(io.popen("ls '" .. root .. "/tests/lua/'*_spec.lua"))
  local parts = {}
  for path in p:lines() do
    if not path:match("zz_coverage_spec%.lua$") then parts[#parts + 1] = H.read(path) end
  end
  p:close()
  return table.concat(parts, "\n")
end

local function used(text, name)
  return text:find(":" .. name .. "(", 1, true) or text:find(":" .. name .. " ", 1, true)
    or text:find("." .. name .. "(", 1, true) or text:find("%." .. name .. "[^%w_]")
    or text:find('"' .. name .. '"', 1, true)
end

describe("coverage", function()
  it("the module calls every function of vmrepl.h", function()
    local header = read("capi/include/vmrepl/vmrepl.h")
    local source = read("bindings/lua/vmrepl_lua.c")
    local missing, n = {}, 0
    for name in header:gmatch("VMR_EXTERN[^;(]-[%s%*](vmr_[%w_]+)%s*%(") do
      n = n + 1
      if not source:find("[^%w_]" .. name .. "[^%w_]") then missing[#missing + 1] = name end
    end
    assert.is_true(n >= 50)
    assert.are.same({}, missing)
  end)

  it("the specs exercise every method and module function", function()
    local text = spec_text()
    local svc, dir = H.service()
    local vm = assert(svc:define_system { name = "c", disks = { 4096 } })
    local job = assert(svc:compute_digest(vm))
    local tables = {
      Service = getmetatable(svc).__index,
      Job = getmetatable(job).__index,
      Instance = select(2, debug.getupvalue(getmetatable(vm).__index, 1)),
      module = vmrepl,
    }
    local missing, n = {}, 0
    for kind, t in pairs(tables) do
      for name, v in pairs(t) do
        if type(v) == "function" then
          n = n + 1
          if not used(text, name) then missing[#missing + 1] = kind .. "." .. name end
        end
      end
    end
    job:wait()
    svc:close()
    H.rmrf(dir)
    table.sort(missing)
    assert.is_true(n >= 60)
    assert.are.same({}, missing)
  end)
end)
