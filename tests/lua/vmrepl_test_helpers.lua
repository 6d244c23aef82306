-- Shared by tests/lua/*_spec.lua: scratch directories, file bytes, services and a pair of
-- services replicating on 127.0.0.1. Found through LUA_PATH (tests/lua/?.lua, set by ctest).
local vmrepl = require("vmrepl")

local H = { vmrepl = vmrepl }

H.BLOCK = 65536

-- Runs a shell command line (a tool, not Lua): under the ASan tree ctest preloads libasan for
-- lua5.4, and an uninstrumented child inheriting it (python3, dd ...) would abort on its own
-- leaks, so the preload is dropped for the whole command line.
function H.sh(cmd)
  local ok = os.execute("unset LD_PRELOAD; " .. cmd)
  assert(ok, "command failed: " .. cmd)
end

function H.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  H.sh("mkdir -p '" .. p .. "'")
  return p
end

function H.rmrf(p)
  if p and p:match("^/tmp/.") then os.execute("rm -rf '" .. p .. "'") end
end

function H.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function H.size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

function H.write_at(path, offset, data)
  local f = assert(io.open(path, "r+b"))
  assert(f:seek("set", offset))
  assert(f:write(data))
  f:close()
end

-- `size` bytes that depend on `seed` (not zeros, not compressible to nothing).
function H.bytes(seed, size)
  size = size or H.BLOCK
  local parts, x = {}, seed * 2654435761 % 4294967296
  for i = 1, 64 do
    x = (x * 1103515245 + 12345) % 4294967296
    parts[i] = string.pack("<I4", x)
  end
  local chunk = table.concat(parts) -- 256 bytes
  return string.rep(chunk, size // #chunk) .. chunk:sub(1, size % #chunk)
end

-- Fills `mib` MiB of a disk with data (real blocks the digest has to read), fast.
function H.fill(path, mib, byte)
  H.sh(string.format("head -c %d /dev/zero | tr '\\000' '\\%03o' | dd of='%s' bs=1M conv=notrunc status=none",
    mib << 20, byte or 1, path))
end

-- A service on a fresh host root; returns svc, dir (remove with H.rmrf(dir)).
function H.service(opts)
  local dir = H.tmpdir()
  local svc = assert(vmrepl.open("local:" .. dir .. "/host", opts or { host_name = "hv-t" }))
  return svc, dir
end

-- Waits for a job started by a method call: `H.ok(svc:method(...))`.
function H.ok(job, msg, code)
  assert(job, string.format("method refused: %s (%s)", msg, code))
  local ok, m, c = job:wait(300)
  assert(ok, string.format("job failed: %s (%s)", m, c))
  return job
end

-- hv-b, a recovery server admitting hv-a, and hv-a, both on 127.0.0.1.
function H.pair()
  local dir = H.tmpdir()
  local P = { dir = dir }
  P.b = assert(vmrepl.open("local:" .. dir .. "/b",
    { host_name = "hv-b", listen = "127.0.0.1:0", hosts = { ["hv-a"] = "127.0.0.1" } }))
  P.a = assert(vmrepl.open("local:" .. dir .. "/a",
    { host_name = "hv-a", listen = "127.0.0.1:0", hosts = { ["hv-b"] = "127.0.0.1" } }))
  P.port = P.b:info().ListenPort
  H.ok(P.b:modify_service_settings { RecoveryServerEnabled = true, AllowedAuthenticationType = 1 })
  H.ok(P.b:add_authorization_entry {
    AllowedPrimaryHostSystem = "hv-a", TrustGroup = "DEFAULT", ReplicaStorageLocation = dir .. "/replicas",
  })
  function P.settings(extra)
    local s = {
      RecoveryConnectionPoint = "hv-b", RecoveryServerPortNumber = P.port, AuthenticationType = 1,
      ReplicationInterval = 300, RecoveryHistory = 3, CompressionEnabled = true,
    }
    for k, v in pairs(extra or {}) do s[k] = v end
    return s
  end
  function P.replica_image(vm)
    local r = assert(P.b:get_system(vm.Name))
    return r.Folder .. "/replica/disk0.img"
  end
  function P.close()
    P.a:close()
    P.b:close()
    H.rmrf(dir)
  end
  return P
end

-- Open descriptors of this process, not counting the pipe this very popen uses: until the child
-- runs, the parent may still hold both of its ends, so counting it would make the figure racy.
function H.fd_count()
  local n = 0
  local p = assert(io.popen("me=$(readlink /proc/$$/fd/1); for f in /proc/" .. H.pid()
    .. "/fd/*; do l=$(readlink \"$f\") && [ \"$l\" != \"$me\" ] && echo \"$l\"; done"))
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

function H.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return math.tointeger(pid)
end

-- pcall that expects a raised error and returns its message.
function H.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, got success")
  assert(type(err) == "string", "error is not a string: " .. tostring(err))
  return err
end

return H
