# Included by vmrepl_layer(store) in the scope of the function, where vmrepl_${name} is the
# target. config.json is written with nlohmann_json (header-only); PUBLIC so the store's tests
# can read the files back with the same library.
target_link_libraries(vmrepl_${name} PUBLIC nlohmann_json::nlohmann_json)
