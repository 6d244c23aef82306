-- Lifetime: <close> and __gc release every handle exactly once; what the engine held (host
-- root lock, descriptors, listeners) is given back.
local vmrepl = require("vmrepl")
local H = require("vmrepl_test_helpers")

describe("lifetime", function()
  local dir
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rmrf(dir) end)

  local function open(name, opts)
    return assert(vmrepl.open("local:" .. dir .. "/" .. name, opts or { host_name = "hv-" .. name }))
  end

  it("<close> closes a service at the end of its scope", function()
    local kept
    do
      local svc <close> = open("a")
      kept = svc
      assert.is_false(svc:closed())
    end
    assert.is_true(kept:closed())
    assert.are.equal("vmrepl.Service (closed)", tostring(kept))
    open("a"):close() -- the host root is free again
  end)

  it("<close> closes on an error too, and after an explicit close it is a no-op", function()
    local kept
    local ok, err = pcall(function()
      local svc <close> = open("a")
      kept = svc
      svc:close()
      error("boom")
    end)
    assert.is_false(ok)
    assert.matches("boom", err)
    assert.is_true(kept:closed())
    ok = pcall(function()
      local svc <close> = open("a")
      kept = svc
      error("boom")
    end)
    assert.is_false(ok)
    assert.is_true(kept:closed())
    open("a"):close()
  end)

  it("<close> works for jobs and instances", function()
    local svc <close> = open("a")
    local vm = assert(svc:define_system { name = "web01", disks = { 1 << 20 } })
    local j, i
    do
      local job <close> = assert(svc:compute_digest(vm))
      local props <close> = job:properties()
      j, i = job, props
      assert.is_true(job:wait())
    end
    assert.are.equal("vmrepl.Job (closed)", tostring(j))
    assert.are.equal("vmrepl.Instance (closed)", tostring(i))
    assert.matches("vmrepl.Job is closed", H.raises(j.state, j), 1, true)
  end)

  it("__gc closes forgotten services: the host root lock and descriptors come back", function()
    collectgarbage()
    collectgarbage()
    local before = H.fd_count()
    for k = 1, 8 do
      local svc = open("s" .. k, { host_name = "hv-" .. k, listen = "127.0.0.1:0" })
      local vm = assert(svc:define_system { name = "web01", disks = { 1 << 20 } })
      assert(svc:compute_digest(vm)) -- a job handle forgotten too
      assert(svc:list_systems()) -- and a list
    end
    assert.is_true(H.fd_count() > before)
    collectgarbage()
    collectgarbage()
    assert.is_true(H.fd_count() <= before)
    for k = 1, 8 do open("s" .. k):close() end -- every lock was released
  end)

  it("a job keeps its service alive; both are released once unreachable", function()
    collectgarbage()
    collectgarbage()
    local before = H.fd_count()
    local weak = setmetatable({}, { __mode = "v" })
    local job
    do
      local svc = open("a")
      weak.svc = svc
      local vm = assert(svc:define_system { name = "web01", disks = { 1 << 20 } })
      job = assert(svc:compute_digest(vm))
    end
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(weak.svc) -- job:service() must keep working
    assert.are.equal(weak.svc, job:service())
    assert.is_true(job:wait())
    job = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak.svc)
    assert.is_true(H.fd_count() <= before)
  end)

  it("close then __gc: each handle is released exactly once", function()
    for k = 1, 20 do
      local svc = open("a")
      local vm = assert(svc:define_system { name = "web" .. k, disks = { 1 << 20 } })
      local job = assert(svc:compute_digest(vm))
      local props = job:properties()
      local list = svc:list_systems()
      props:close()
      list[1]:close()
      job:close()
      svc:close()
      svc:close()
      H.raises(svc.info, svc)
    end
    collectgarbage()
    collectgarbage()
    open("a"):close()
  end)

  it("jobs and instances outlive a closed service and are collected after it", function()
    local svc = open("a")
    local vm = assert(svc:define_system { name = "web01", disks = { 1 << 20 } })
    local job = H.ok(svc:compute_digest(vm))
    local stats = svc:info()
    svc:close()
    svc = nil -- luacheck: ignore
    collectgarbage()
    assert.is_true(job:wait())
    assert.is_string(job:properties().MerkleRoot)
    assert.is_string(stats:to_json())
    job, stats = nil, nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
  end)

  it("closing a service with running jobs stops them (Terminated) and releases it", function()
    local svc = open("a", { host_name = "hv-a", hash = "sha256" })
    local vm = assert(svc:define_system { name = "big", disks = { 256 << 20 } })
    H.fill(assert(svc:disk_path(vm)), 256, 3)
    local jobs = {}
    for k = 1, 3 do jobs[k] = assert(svc:compute_digest(vm)) end
    svc:close()
    for _, job in ipairs(jobs) do
      assert.is_true(job:done())
      local ok, _, code = job:wait(0)
      assert.is_true(ok == true or code == 32768 or code == 32777)
    end
    open("a"):close()
  end)
end)
