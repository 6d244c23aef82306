// The one way core/protocol (and its tests) include msgpack-cxx: API version 3, for the
// visitor-based msgpack::parse that checks a message's shape before anything is allocated,
// and no Boost. Every translation unit of the program must see the same API version.
//
// Thread-safety: n/a (configuration).
#pragma once

#if defined(MSGPACK_DEFAULT_API_VERSION) && MSGPACK_DEFAULT_API_VERSION != 3
#error "msgpack-cxx was included with another API version before core/protocol/msgpack_api.h"
#endif
#ifndef MSGPACK_DEFAULT_API_VERSION
#define MSGPACK_DEFAULT_API_VERSION 3
#endif
#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif

#include <msgpack.hpp>
