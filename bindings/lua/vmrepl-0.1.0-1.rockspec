-- LuaRocks build of the Lua binding, beside the CMake one (bindings/lua/CMakeLists.txt).
-- libvmrepl (the C ABI) must be built or installed first. From bindings/lua:
--
--   luarocks --lua-version=5.4 make vmrepl-0.1.0-1.rockspec                   # installed libvmrepl
--   luarocks --lua-version=5.4 make vmrepl-0.1.0-1.rockspec \
--       VMREPL_INCDIR=../../capi/include VMREPL_LIBDIR=../../build/capi        # a build tree
rockspec_format = "3.0"
package = "vmrepl"
version = "0.1.0-1"
source = {
   url = "git+file:///vmrepl", -- the vmrepl repository; `luarocks make` builds the checkout in place
   tag = "v0.1.0",
}
description = {
   summary = "Lua 5.4 binding of libvmrepl: VM disk replication on the Hyper-V Replica model",
   detailed = [[
`local vmrepl = require("vmrepl")`: services, VMs, replication relationships, jobs and
instances of libvmrepl's stable C ABI as Lua userdata, with the model's status numbers
(failures return nil, message, code). `vmrepl.luv` drives jobs from a luv loop with
coroutines.]],
   license = "See the vmrepl repository",
   labels = { "replication", "hyper-v", "ffi" },
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
test_dependencies = {
   "busted",
   "luv",
}
external_dependencies = {
   VMREPL = {
      header = "vmrepl/vmrepl.h",
      library = "vmrepl",
   },
}
build = {
   type = "builtin",
   modules = {
      vmrepl = {
         sources = { "vmrepl_lua.c" },
         libraries = { "vmrepl" },
         incdirs = { "$(VMREPL_INCDIR)" },
         libdirs = { "$(VMREPL_LIBDIR)" },
         defines = {},
      },
      ["vmrepl.luv"] = "vmrepl/luv.lua",
   },
}
test = {
   type = "busted",
   flags = { "../../tests/lua" },
}
