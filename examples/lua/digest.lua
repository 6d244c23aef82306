#!/usr/bin/env lua5.4
--[[ Define VMs, write into their disks, and digest them (ComputeDigest) from Lua.

  With lua-luv installed, both digests run at once, each driven by a coroutine of a luv loop
  (vmrepl.luv): job:wait() yields, progress arrives through the service descriptor, no thread
  and no polling. Without luv, the jobs are waited on one after the other.

  Run it from the repository root with LUA_CPATH pointing at the built module (vmrepl.so is
  in <build dir>/bindings/lua/lua/) and LUA_PATH at bindings/lua (for vmrepl.luv):

    LUA_CPATH="build/bindings/lua/lua/?.so;;" LUA_PATH="bindings/lua/?.lua;;" \
        lua5.4 examples/lua/digest.lua [HOST_ROOT] [--size-mib N] [--no-luv]

  HOST_ROOT defaults to a fresh temporary directory, removed at the end. Once installed
  (vmrepl.so in the Lua 5.4 cpath, vmrepl/luv.lua in its path), neither variable is needed.
]]
local vmrepl = require("vmrepl")

local root, size_mib, use_luv = nil, 256, true
do
  local i = 1
  while i <= #arg do
    if arg[i] == "--size-mib" then
      size_mib = assert(math.tointeger(tonumber(arg[i + 1])), "--size-mib needs a number")
      i = i + 1
    elseif arg[i] == "--no-luv" then
      use_luv = false
    else
      root = arg[i]
    end
    i = i + 1
  end
end
local temporary = root == nil
if temporary then
  root = os.tmpname()
  os.remove(root)
end

local vl = nil
if use_luv then
  local ok, mod = pcall(require, "vmrepl.luv")
  if ok then vl = mod else io.stderr:write("(vmrepl.luv not available: waiting without luv)\n") end
end

local function check(what, ok, msg, code)
  if not ok then
    io.stderr:write(string.format("%s failed: %s (%s, %d)\n", what, msg, vmrepl.Status[code] or "?", code))
    os.exit(1, true) -- closes the state: the <close> service is closed on the way out
  end
  return ok
end

local MIB = 1 << 20
local lines = {}

local function show(name, p)
  lines[name] = string.format("%-6s %3d%% %7.1f/%7.1f MiB %-22.22s", name, p.percent, p.bytes_done / MIB,
    p.bytes_total / MIB, p.phase)
  local all = {}
  for _, l in pairs(lines) do all[#all + 1] = l end
  table.sort(all)
  io.stderr:write("\r", table.concat(all, " | "))
end

-- Digests one VM: under luv this runs in a coroutine and job:wait() yields.
local function digest(svc, vm)
  local job = check("ComputeDigest", svc:compute_digest(vm))
  job:on_progress(function(p) show(vm.ElementName, p) end)
  check("ComputeDigest " .. vm.ElementName, job:wait(600))
  local r = job:properties()
  show(vm.ElementName, job:progress())
  return r
end

local results = {}
do
  local svc <close> = check("open", vmrepl.open("local:" .. root, { host_name = "hv-demo" }))
  local vms = {}
  for k, name in ipairs({ "web01", "db01" }) do
    local vm = check("DefineSystem", svc:define_system { name = name, disks = { size_mib * MIB } })
    -- The workload: a few MiB at several places of the (sparse) disk.
    local f = assert(io.open(check("disk_path", svc:disk_path(vm, 0)), "r+b"))
    for i, offset in ipairs({ 0, (size_mib // 2) * MIB, (size_mib - 4) * MIB }) do
      f:seek("set", offset)
      f:write(string.rep(string.char(k * 16 + i), 4 * MIB))
    end
    f:close()
    print(string.format("defined %s (%s), disk %s", vm.ElementName, vm.Name, svc:disk_path(vm, 0)))
    vms[#vms + 1] = vm
  end

  if vl then
    for _, vm in ipairs(vms) do
      vl.spawn(function() results[vm.ElementName] = digest(svc, vm) end)
    end
    vl.run() -- returns when both coroutines are done
  else
    for _, vm in ipairs(vms) do results[vm.ElementName] = digest(svc, vm) end
  end
  io.stderr:write("\n")

  for _, vm in ipairs(vms) do
    local r = results[vm.ElementName]
    print(string.format("%-6s MerkleRoot %s (%s), %d blocks of %d bytes, %d zero, %d bytes read, elapsed %s",
      vm.ElementName, r.MerkleRoot, r.HashAlgorithm, r.BlockCount, r.BlockSize, r.ZeroBlocks, r.BytesRead,
      r.ElapsedTime))
    check("DestroySystem", svc:destroy_system(vm))
  end
end

if temporary then os.execute("rm -rf '" .. root .. "'") end
