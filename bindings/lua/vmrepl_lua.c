/*
 * vmrepl — the Lua 5.4 binding: `local vmrepl = require("vmrepl")`.
 *
 * A C module over the public C ABI only (vmrepl/vmrepl.h). Conventions (lua: liolib.c, luv):
 *  - one named metatable per type: "vmrepl.Service", "vmrepl.Job", "vmrepl.Instance", with
 *    __index (methods), __gc, __close and __tostring ("vmrepl.Service (closed)");
 *  - every userdata is created closed before the C call that fills it, so an error (even out
 *    of memory) never leaks a handle, and every handle is released exactly once (close(),
 *    __close or __gc, whichever comes first);
 *  - a failing call returns nil, message, code (the model's number: 32775 InvalidState...);
 *    misuse (a wrong argument type, a closed handle) raises with luaL_argerror;
 *  - no Lua code ever runs inside a C ABI call: job events collected by the C callback during
 *    vmr_service_dispatch() are turned into Lua values after it returns.
 *
 * Waiting: job:wait() blocks in vmr_job_wait() unless a scheduler is installed
 * (vmrepl.set_scheduler, used by vmrepl.luv) and the caller can yield: then the scheduler's
 * wait(job, timeout) runs (lua_callk), which may yield the coroutine until the job ends.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "vmrepl/vmrepl.h"

#if defined(__GNUC__)
#define VMRL_EXPORT __attribute__((visibility("default")))
#else
#define VMRL_EXPORT
#endif

#define SERVICE_MT "vmrepl.Service"
#define JOB_MT "vmrepl.Job"
#define INSTANCE_MT "vmrepl.Instance"
#define OWNED_MT "vmrepl.Owned" /* internal: frees a C allocation when collected */

/* Registry keys (addresses of these statics). */
static const char JOBS_KEY = 'j';      /* weak-valued: lightuserdata(Job *) -> Job userdata */
static const char SCHEDULER_KEY = 's'; /* the table given to vmrepl.set_scheduler, or absent */

#define JSON_MAX_DEPTH 64

/* ---- userdata types ------------------------------------------------------------------- */

/* User values: 1 = uri string. */
typedef struct {
  vmr_service *svc; /* NULL once closed */
} Service;

/* User values: 1 = the Service userdata, 2 = the on_progress function or nil. */
typedef struct {
  vmr_job *job; /* NULL once closed */
} Job;

/* User values: 1 = property values (table), 2 = keeper of the owning vmr_list (or nil),
 * 3 = class name, 4 = property names in order (array, nulls included). Values are read once
 * at creation, so field access keeps working after close(); the handle serves to_json() & co. */
typedef struct {
  const vmr_instance *inst; /* NULL once closed */
  vmr_instance *owned;      /* what to release: NULL for an item borrowed from a list */
} Instance;

/* A C allocation owned by Lua until released: strings from the C ABI, lists, scratch. */
typedef struct {
  void *p;
  void (*release)(void *);
} Owned;

/* ---- small helpers -------------------------------------------------------------------- */

static int owned_gc(lua_State *L) {
  Owned *o = (Owned *)luaL_checkudata(L, 1, OWNED_MT);
  if (o->p) {
    void *p = o->p;
    o->p = NULL;
    o->release(p);
  }
  return 0;
}

static void free_list(void *p) { vmr_list_release((vmr_list *)p); }
static void free_c(void *p) { vmr_free(p); }
static void free_std(void *p) { free(p); }

/* Pushes an empty keeper for a C allocation released with `release`. */
static Owned *push_owned(lua_State *L, void (*release)(void *)) {
  Owned *o = (Owned *)lua_newuserdatauv(L, sizeof(Owned), 0);
  o->p = NULL;
  o->release = release;
  luaL_setmetatable(L, OWNED_MT);
  return o;
}

/* Releases what the keeper holds now (it stays usable). */
static void owned_release(Owned *o) {
  if (o->p) {
    void *p = o->p;
    o->p = NULL;
    o->release(p);
  }
}

/* nil, message, code: the failure convention (luaL_fileresult). */
static int push_failure(lua_State *L, vmr_status st) {
  luaL_pushfail(L);
  lua_pushstring(L, vmr_last_error_message());
  lua_pushinteger(L, (lua_Integer)st);
  return 3;
}

static int push_failure_msg(lua_State *L, vmr_status st, const char *msg) {
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  lua_pushinteger(L, (lua_Integer)st);
  return 3;
}

static void push_u64(lua_State *L, uint64_t v) {
  if (v <= (uint64_t)LUA_MAXINTEGER)
    lua_pushinteger(L, (lua_Integer)v);
  else
    lua_pushnumber(L, (lua_Number)v);
}

/* A string argument, strictly (numbers are not converted: they are misuse). */
static const char *check_str(lua_State *L, int arg) {
  if (lua_type(L, arg) != LUA_TSTRING) luaL_typeerror(L, arg, "string");
  return lua_tostring(L, arg);
}

static const char *opt_str(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return NULL;
  return check_str(L, arg);
}

/* An integer argument in [lo, hi] (floats with an exact integer value are accepted, as Lua
 * does everywhere). */
static lua_Integer check_range(lua_State *L, int arg, lua_Integer lo, lua_Integer hi, const char *what) {
  int isnum = 0;
  lua_Integer v = lua_tointegerx(L, arg, &isnum);
  if (!isnum || lua_type(L, arg) != LUA_TNUMBER) {
    if (lua_type(L, arg) == LUA_TNUMBER) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer", what));
    luaL_typeerror(L, arg, "integer");
  }
  if (v < lo || v > hi)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s %I is out of range (%I..%I)", what, v, lo, hi));
  return v;
}

static lua_Integer opt_range(lua_State *L, int arg, lua_Integer def, lua_Integer lo, lua_Integer hi, const char *what) {
  if (lua_isnoneornil(L, arg)) return def;
  return check_range(L, arg, lo, hi, what);
}

/* ---- growable byte buffer (in a keeper, so an error frees it) ------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
} SBuf;

static void sbuf_free(void *p) {
  SBuf *b = (SBuf *)p;
  free(b->p);
  free(b);
}

static SBuf *push_sbuf(lua_State *L) {
  Owned *o = push_owned(L, sbuf_free);
  SBuf *b = (SBuf *)calloc(1, sizeof(SBuf));
  if (!b) luaL_error(L, "not enough memory");
  o->p = b;
  return b;
}

static void sbuf_add(lua_State *L, SBuf *b, const char *s, size_t n) {
  if (b->cap - b->n < n + 1) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < n + 1) {
      if (cap > ((size_t)-1) / 2) luaL_error(L, "not enough memory");
      cap *= 2;
    }
    char *p = (char *)realloc(b->p, cap);
    if (!p) luaL_error(L, "not enough memory");
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sbuf_adds(lua_State *L, SBuf *b, const char *s) { sbuf_add(L, b, s, strlen(s)); }

/* ---- JSON: Lua values -> text (settings, options) ------------------------------------- */

typedef struct {
  lua_State *L;
  SBuf *b;
  int arg;       /* the argument being encoded, for luaL_argerror */
  char path[96]; /* where in the value, for messages */
} Enc;

static int is_null_sentinel(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

static void enc_fail(Enc *e, const char *what) {
  if (e->path[0])
    luaL_argerror(e->L, e->arg, lua_pushfstring(e->L, "%s (at %s)", what, e->path));
  luaL_argerror(e->L, e->arg, what);
}

static void enc_string(Enc *e, const char *s, size_t n) {
  SBuf *b = e->b;
  sbuf_add(e->L, b, "\"", 1);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    sbuf_add(e->L, b, s + start, i - start);
    char esc[8];
    switch (c) {
      case '"': strcpy(esc, "\\\""); break;
      case '\\': strcpy(esc, "\\\\"); break;
      case '\n': strcpy(esc, "\\n"); break;
      case '\r': strcpy(esc, "\\r"); break;
      case '\t': strcpy(esc, "\\t"); break;
      case '\b': strcpy(esc, "\\b"); break;
      case '\f': strcpy(esc, "\\f"); break;
      default: snprintf(esc, sizeof esc, "\\u%04x", c); break;
    }
    sbuf_adds(e->L, b, esc);
    start = i + 1;
  }
  sbuf_add(e->L, b, s + start, n - start);
  sbuf_add(e->L, b, "\"", 1);
}

static void enc_value(Enc *e, int idx, int depth);

/* Array when the keys are exactly 1..n (n > 0), object when they are all strings. */
static void enc_table(Enc *e, int idx, int depth) {
  lua_State *L = e->L;
  if (depth > JSON_MAX_DEPTH) enc_fail(e, "table nested too deeply (a cycle?)");
  luaL_checkstack(L, 4, "JSON encoding");
  idx = lua_absindex(L, idx);
  lua_Integer count = 0, max = 0;
  int strings = 0, others = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      strings++;
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      count++;
      if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    } else {
      others++;
    }
  }
  size_t saved = strlen(e->path);
  if (count > 0 && strings == 0 && others == 0 && max == count) {
    sbuf_add(L, e->b, "[", 1);
    for (lua_Integer i = 1; i <= count; i++) {
      if (i > 1) sbuf_add(L, e->b, ",", 1);
      snprintf(e->path + saved, sizeof e->path - saved, "[%lld]", (long long)i);
      lua_geti(L, idx, i);
      enc_value(e, -1, depth + 1);
      lua_pop(L, 1);
    }
    e->path[saved] = '\0';
    sbuf_add(L, e->b, "]", 1);
    return;
  }
  if (count > 0 || others > 0) enc_fail(e, "a table must be an array (keys 1..n) or have only string keys");
  sbuf_add(L, e->b, "{", 1);
  int first = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t kn;
    const char *k = lua_tolstring(L, -2, &kn); /* a string: no conversion, next() is safe */
    if (!first) sbuf_add(L, e->b, ",", 1);
    first = 0;
    enc_string(e, k, kn);
    sbuf_add(L, e->b, ":", 1);
    snprintf(e->path + saved, sizeof e->path - saved, "%s%s", saved ? "." : "", k);
    enc_value(e, -1, depth + 1);
    e->path[saved] = '\0';
    lua_pop(L, 1);
  }
  sbuf_add(L, e->b, "}", 1);
}

static void enc_value(Enc *e, int idx, int depth) {
  lua_State *L = e->L;
  char num[64];
  switch (lua_type(L, idx)) {
    case LUA_TNIL: sbuf_adds(L, e->b, "null"); return;
    case LUA_TBOOLEAN: sbuf_adds(L, e->b, lua_toboolean(L, idx) ? "true" : "false"); return;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
      } else {
        lua_Number d = lua_tonumber(L, idx);
        lua_Integer i;
        if (!isfinite(d)) enc_fail(e, "inf and nan cannot be written as JSON");
        if (lua_numbertointeger(floor(d), &i) && (lua_Number)i == d)
          snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)i); /* 30.0 is the integer 30 */
        else
          snprintf(num, sizeof num, "%.17g", (double)d);
      }
      sbuf_adds(L, e->b, num);
      return;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      enc_string(e, s, n);
      return;
    }
    case LUA_TTABLE: enc_table(e, idx, depth); return;
    case LUA_TLIGHTUSERDATA:
      if (is_null_sentinel(L, idx)) {
        sbuf_adds(L, e->b, "null");
        return;
      }
      break;
    default:
      break;
  }
  enc_fail(e, lua_pushfstring(L, "a %s cannot be written as JSON", luaL_typename(L, idx)));
}

/* Encodes the value at `arg` and pushes the text (the buffer keeper is popped). */
static const char *encode_json(lua_State *L, int arg) {
  arg = lua_absindex(L, arg);
  SBuf *b = push_sbuf(L);
  Enc e;
  e.L = L;
  e.b = b;
  e.arg = arg;
  e.path[0] = '\0';
  enc_value(&e, arg, 0);
  lua_pushlstring(L, b->p ? b->p : "", b->n);
  lua_remove(L, -2); /* the keeper: collected, frees the buffer */
  return lua_tostring(L, -1);
}

/* ---- JSON: text -> Lua values (instances' arrays and reals, vmrepl.json_decode) ------- */

typedef struct {
  lua_State *L;
  const char *s, *end;
  int depth;
} Dec;

static void dec_fail(Dec *d, const char *what) {
  luaL_error(d->L, "invalid JSON: %s", what);
}

static void dec_ws(Dec *d) {
  while (d->s < d->end && (*d->s == ' ' || *d->s == '\t' || *d->s == '\n' || *d->s == '\r')) d->s++;
}

static int dec_hex4(Dec *d, unsigned *out) {
  if (d->end - d->s < 4) return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = d->s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  d->s += 4;
  *out = v;
  return 1;
}

static void dec_string(Dec *d) {
  lua_State *L = d->L;
  luaL_Buffer b;
  d->s++; /* the opening quote */
  luaL_buffinit(L, &b);
  for (;;) {
    if (d->s >= d->end) dec_fail(d, "unterminated string");
    unsigned char c = (unsigned char)*d->s++;
    if (c == '"') break;
    if (c < 0x20) dec_fail(d, "control character in a string");
    if (c != '\\') {
      luaL_addchar(&b, (char)c);
      continue;
    }
    if (d->s >= d->end) dec_fail(d, "unterminated string");
    c = (unsigned char)*d->s++;
    switch (c) {
      case '"': luaL_addchar(&b, '"'); break;
      case '\\': luaL_addchar(&b, '\\'); break;
      case '/': luaL_addchar(&b, '/'); break;
      case 'b': luaL_addchar(&b, '\b'); break;
      case 'f': luaL_addchar(&b, '\f'); break;
      case 'n': luaL_addchar(&b, '\n'); break;
      case 'r': luaL_addchar(&b, '\r'); break;
      case 't': luaL_addchar(&b, '\t'); break;
      case 'u': {
        unsigned cp, lo;
        if (!dec_hex4(d, &cp)) dec_fail(d, "bad \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (d->end - d->s >= 6 && d->s[0] == '\\' && d->s[1] == 'u') {
            d->s += 2;
            if (!dec_hex4(d, &lo) || lo < 0xDC00 || lo > 0xDFFF) dec_fail(d, "bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        char u[4];
        int n;
        if (cp < 0x80) { u[0] = (char)cp; n = 1; }
        else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
        else if (cp < 0x10000) {
          u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
          u[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
        } else {
          u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
          u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
        }
        luaL_addlstring(&b, u, (size_t)n);
        break;
      }
      default: dec_fail(d, "bad escape");
    }
  }
  luaL_pushresult(&b);
}

static void dec_number(Dec *d) {
  const char *p = d->s;
  int is_int = 1;
  if (p < d->end && *p == '-') p++;
  if (p >= d->end || *p < '0' || *p > '9') dec_fail(d, "bad number");
  while (p < d->end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-')) {
    if (*p == '.' || *p == 'e' || *p == 'E') is_int = 0;
    p++;
  }
  char tmp[64];
  size_t n = (size_t)(p - d->s);
  if (n >= sizeof tmp) dec_fail(d, "number too long");
  memcpy(tmp, d->s, n);
  tmp[n] = '\0';
  char *endp;
  errno = 0;
  if (is_int) {
    if (tmp[0] == '-') {
      long long v = strtoll(tmp, &endp, 10);
      if (*endp == '\0' && errno == 0) {
        lua_pushinteger(d->L, (lua_Integer)v);
        d->s = p;
        return;
      }
    } else {
      unsigned long long v = strtoull(tmp, &endp, 10);
      if (*endp == '\0' && errno == 0) {
        push_u64(d->L, (uint64_t)v);
        d->s = p;
        return;
      }
    }
    errno = 0;
  }
  double v = strtod(tmp, &endp);
  if (*endp != '\0') dec_fail(d, "bad number");
  lua_pushnumber(d->L, (lua_Number)v);
  d->s = p;
}

static int dec_literal(Dec *d, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(d->end - d->s) >= n && memcmp(d->s, lit, n) == 0) {
    d->s += n;
    return 1;
  }
  return 0;
}

/* Pushes one value. JSON null is nil in an object (the key is left out) and vmrepl.null
 * (a NULL light userdata) in an array, so arrays keep their length. */
static void dec_value(Dec *d, int in_array) {
  lua_State *L = d->L;
  dec_ws(d);
  if (d->s >= d->end) dec_fail(d, "unexpected end");
  luaL_checkstack(L, 3, "JSON decoding");
  char c = *d->s;
  if (c == '{' || c == '[') {
    if (++d->depth > JSON_MAX_DEPTH) dec_fail(d, "nested too deeply");
    d->s++;
    lua_newtable(L);
    dec_ws(d);
    char close = c == '{' ? '}' : ']';
    if (d->s < d->end && *d->s == close) {
      d->s++;
      d->depth--;
      return;
    }
    lua_Integer i = 1;
    for (;;) {
      if (c == '{') {
        dec_ws(d);
        if (d->s >= d->end || *d->s != '"') dec_fail(d, "expected a key");
        dec_string(d);
        dec_ws(d);
        if (d->s >= d->end || *d->s != ':') dec_fail(d, "expected ':'");
        d->s++;
        dec_value(d, 0);
        lua_rawset(L, -3); /* nil values leave the key out */
      } else {
        dec_value(d, 1);
        lua_rawseti(L, -2, i++);
      }
      dec_ws(d);
      if (d->s < d->end && *d->s == ',') {
        d->s++;
        continue;
      }
      if (d->s < d->end && *d->s == close) {
        d->s++;
        break;
      }
      dec_fail(d, "expected ',' or a closing bracket");
    }
    d->depth--;
    return;
  }
  if (c == '"') {
    dec_string(d);
  } else if (dec_literal(d, "true")) {
    lua_pushboolean(L, 1);
  } else if (dec_literal(d, "false")) {
    lua_pushboolean(L, 0);
  } else if (dec_literal(d, "null")) {
    if (in_array)
      lua_pushlightuserdata(L, NULL);
    else
      lua_pushnil(L);
  } else {
    dec_number(d);
  }
}

static void decode_json(lua_State *L, const char *s, size_t n) {
  Dec d;
  d.L = L;
  d.s = s;
  d.end = s + n;
  d.depth = 0;
  dec_value(&d, 1);
  dec_ws(&d);
  if (d.s != d.end) dec_fail(&d, "trailing characters");
  if (is_null_sentinel(L, -1)) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* ---- instances ------------------------------------------------------------------------ */

static Instance *check_instance_any(lua_State *L, int arg) {
  return (Instance *)luaL_checkudata(L, arg, INSTANCE_MT);
}

static const vmr_instance *check_instance(lua_State *L, int arg) {
  Instance *i = check_instance_any(L, arg);
  if (!i->inst) luaL_argerror(L, arg, "vmrepl.Instance is closed");
  return i->inst;
}

/* Pushes the value of property `name` of type t (not null) onto the stack. `json_slot` holds
 * the instance's JSON table once decoded (nil before): arrays of numbers / booleans and reals
 * have no typed getter in the ABI, so they come from vmr_instance_to_json. */
static void push_property(lua_State *L, const vmr_instance *inst, const char *name, uint16_t t, int is_array,
                          int json_slot, Owned *scratch) {
  int text = t == VMR_TYPE_STRING || t == VMR_TYPE_DATETIME || t == VMR_TYPE_REFERENCE;
  int scalar_getter = text || t == VMR_TYPE_BOOLEAN || (t >= VMR_TYPE_UINT8 && t <= VMR_TYPE_SINT64);
  if (is_array && text) {
    char **arr = NULL;
    size_t count = 0;
    if (vmr_instance_get_string_array(inst, name, &arr, &count) != VMR_OK) {
      lua_pushnil(L);
      return;
    }
    scratch->p = arr;
    lua_createtable(L, (int)(count < INT32_MAX ? count : 0), 0);
    for (size_t k = 0; k < count; k++) {
      lua_pushstring(L, arr[k]);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    owned_release(scratch);
    return;
  }
  if (is_array || !scalar_getter) {
    if (lua_isnil(L, json_slot)) {
      char *json = NULL;
      if (vmr_instance_to_json(inst, &json) != VMR_OK) {
        lua_pushnil(L);
        return;
      }
      scratch->p = json;
      decode_json(L, json, strlen(json));
      owned_release(scratch);
      lua_replace(L, json_slot);
    }
    lua_getfield(L, json_slot, name);
    return;
  }
  if (t == VMR_TYPE_BOOLEAN) {
    int b = 0;
    if (vmr_instance_get_bool(inst, name, &b) != VMR_OK) lua_pushnil(L);
    else lua_pushboolean(L, b);
  } else if (t == VMR_TYPE_UINT8 || t == VMR_TYPE_UINT16 || t == VMR_TYPE_UINT32 || t == VMR_TYPE_UINT64) {
    uint64_t v = 0;
    if (vmr_instance_get_u64(inst, name, &v) != VMR_OK) lua_pushnil(L);
    else push_u64(L, v);
  } else if (t == VMR_TYPE_SINT8 || t == VMR_TYPE_SINT16 || t == VMR_TYPE_SINT32 || t == VMR_TYPE_SINT64) {
    int64_t v = 0;
    if (vmr_instance_get_i64(inst, name, &v) != VMR_OK) lua_pushnil(L);
    else lua_pushinteger(L, (lua_Integer)v);
  } else {
    char *s = NULL;
    if (vmr_instance_get_string(inst, name, &s) != VMR_OK) {
      lua_pushnil(L);
      return;
    }
    scratch->p = s;
    lua_pushstring(L, s);
    owned_release(scratch);
  }
}

/* Reads every property into the user values of the Instance userdata at `ud`. */
static void instance_load(lua_State *L, int ud, const vmr_instance *inst) {
  ud = lua_absindex(L, ud);
  luaL_checkstack(L, 8, "vmrepl.Instance");
  Owned *scratch = push_owned(L, free_c); /* +1: frees a C string if a push fails */
  int scratch_slot = lua_gettop(L);
  lua_pushnil(L); /* +2: the instance as a JSON table, decoded when first needed */
  int json_slot = lua_gettop(L);
  lua_newtable(L); /* +3 values */
  lua_newtable(L); /* +4 names */
  size_t count = vmr_instance_count(inst);
  lua_Integer n = 0;
  for (size_t i = 0; i < count; i++) {
    const char *name = vmr_instance_name_at(inst, i);
    if (!name) break;
    lua_pushstring(L, name);
    lua_rawseti(L, -2, ++n);
    uint16_t t = 0;
    int is_array = 0, is_null = 0;
    if (vmr_instance_type(inst, name, &t, &is_array, &is_null) != VMR_OK || is_null) continue;
    push_property(L, inst, name, t, is_array, json_slot, scratch);
    lua_setfield(L, -3, name);
  }
  lua_setiuservalue(L, ud, 4);
  lua_setiuservalue(L, ud, 1);
  const char *cls = vmr_instance_class(inst);
  lua_pushstring(L, cls ? cls : "");
  lua_setiuservalue(L, ud, 3);
  lua_pop(L, 2); /* json, scratch */
  (void)scratch_slot;
}

/* A closed Instance userdata, to be filled by a C call. */
static Instance *push_instance_ud(lua_State *L) {
  Instance *i = (Instance *)lua_newuserdatauv(L, sizeof(Instance), 4);
  i->inst = NULL;
  i->owned = NULL;
  luaL_setmetatable(L, INSTANCE_MT);
  return i;
}

/* Takes ownership of `inst` (already stored in the userdata on top) and loads its values. */
static void instance_fill(lua_State *L, Instance *i, vmr_instance *inst) {
  i->owned = inst;
  i->inst = inst;
  instance_load(L, -1, inst);
}

/* Pushes a Lua array of Instances for a list (the keeper at `keeper` owns it; each item keeps
 * the keeper alive, so the borrowed vmr_instance pointers stay valid). */
static void push_list_items(lua_State *L, int keeper, const vmr_list *list) {
  keeper = lua_absindex(L, keeper);
  size_t n = vmr_list_size(list);
  lua_createtable(L, (int)(n < INT32_MAX ? n : 0), 0);
  for (size_t k = 0; k < n; k++) {
    const vmr_instance *item = vmr_list_get(list, k);
    if (!item) break;
    Instance *i = push_instance_ud(L);
    lua_pushvalue(L, keeper);
    lua_setiuservalue(L, -2, 2);
    i->inst = item;
    instance_load(L, -1, item);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
}

static int inst_index(lua_State *L) {
  Instance *i = check_instance_any(L, 1);
  (void)i;
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    lua_pop(L, 1);
  }
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int inst_newindex(lua_State *L) {
  check_instance_any(L, 1);
  return luaL_error(L, "vmrepl.Instance is read-only (property %s)", luaL_tolstring(L, 2, NULL));
}

static int values_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

static int inst_pairs(lua_State *L) {
  check_instance_any(L, 1);
  lua_pushcfunction(L, values_next);
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_pushnil(L);
  return 3;
}

static int inst_close(lua_State *L) {
  Instance *i = check_instance_any(L, 1);
  vmr_instance *owned = i->owned;
  i->owned = NULL;
  i->inst = NULL;
  if (owned) vmr_instance_release(owned);
  /* An item of a list drops its hold on the list. */
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 2);
  return 0;
}

static int inst_gc(lua_State *L) {
  Instance *i = check_instance_any(L, 1);
  vmr_instance *owned = i->owned;
  i->owned = NULL;
  i->inst = NULL;
  if (owned) vmr_instance_release(owned);
  return 0;
}

static int inst_tostring(lua_State *L) {
  Instance *i = check_instance_any(L, 1);
  if (!i->inst) {
    lua_pushliteral(L, "vmrepl.Instance (closed)");
    return 1;
  }
  lua_getiuservalue(L, 1, 3);
  const char *cls = lua_tostring(L, -1);
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, "Name");
  if (lua_type(L, -1) == LUA_TSTRING)
    lua_pushfstring(L, "vmrepl.Instance (%s %s)", cls ? cls : "?", lua_tostring(L, -1));
  else
    lua_pushfstring(L, "vmrepl.Instance (%s)", cls ? cls : "?");
  return 1;
}

typedef vmr_status (*SerializeFn)(const vmr_instance *, char **);

static int inst_serialize(lua_State *L, SerializeFn fn) {
  const vmr_instance *inst = check_instance(L, 1);
  Owned *o = push_owned(L, free_c);
  char *out = NULL;
  vmr_status st = fn(inst, &out);
  if (st != VMR_OK) return push_failure(L, st);
  o->p = out;
  lua_pushstring(L, out ? out : "");
  owned_release(o);
  return 1;
}

static int inst_to_json(lua_State *L) { return inst_serialize(L, vmr_instance_to_json); }
static int inst_to_cim_xml(lua_State *L) { return inst_serialize(L, vmr_instance_to_cim_xml); }
static int inst_to_mof(lua_State *L) { return inst_serialize(L, vmr_instance_to_mof); }

static int inst_class_name(lua_State *L) {
  check_instance_any(L, 1);
  lua_getiuservalue(L, 1, 3);
  return 1;
}

static int inst_names(lua_State *L) {
  check_instance_any(L, 1);
  lua_newtable(L);
  if (lua_getiuservalue(L, 1, 4) == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer k = 1; k <= n; k++) {
      lua_geti(L, -1, k);
      lua_rawseti(L, -3, k);
    }
  }
  lua_pop(L, 1);
  return 1;
}

/* A plain table copy of the values (vmrepl.null for nothing: nulls are left out). */
static int inst_to_table(lua_State *L) {
  check_instance_any(L, 1);
  lua_newtable(L);
  if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -5);
    }
  }
  lua_pop(L, 1);
  return 1;
}

/* inst:type(name) -> cim_type, is_array, is_null | nil, message, code (32773 unknown name) */
static int inst_type(lua_State *L) {
  const vmr_instance *inst = check_instance(L, 1);
  const char *name = check_str(L, 2);
  uint16_t t = 0;
  int is_array = 0, is_null = 0;
  vmr_status st = vmr_instance_type(inst, name, &t, &is_array, &is_null);
  if (st != VMR_OK) return push_failure(L, st);
  lua_pushinteger(L, t);
  lua_pushboolean(L, is_array);
  lua_pushboolean(L, is_null);
  return 3;
}

/* ---- services ------------------------------------------------------------------------- */

static Service *check_service_any(lua_State *L, int arg) { return (Service *)luaL_checkudata(L, arg, SERVICE_MT); }

static vmr_service *check_service(lua_State *L, int arg) {
  Service *s = check_service_any(L, arg);
  if (!s->svc) luaL_argerror(L, arg, "vmrepl.Service is closed");
  return s->svc;
}

/* "computer_system": a VM name, GUID or object path (string) or a VM Instance (its Name). */
static const char *check_cs(lua_State *L, int arg) {
  int t = lua_type(L, arg);
  if (t == LUA_TSTRING) return lua_tostring(L, arg);
  Instance *i = (Instance *)luaL_testudata(L, arg, INSTANCE_MT);
  if (i) {
    lua_getiuservalue(L, arg, 3);
    const char *cls = lua_tostring(L, -1);
    int is_vm = cls && (strcmp(cls, "Msvm_ComputerSystem") == 0 || strcmp(cls, "CIM_ComputerSystem") == 0);
    lua_pop(L, 1);
    if (!is_vm)
      luaL_argerror(L, arg, lua_pushfstring(L, "an Instance of Msvm_ComputerSystem is needed, not %s", cls ? cls : "?"));
    lua_getiuservalue(L, arg, 1);
    lua_getfield(L, -1, "Name");
    if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, arg, "the VM Instance has no Name");
    const char *name = lua_tostring(L, -1);
    /* Keep the string anchored in the argument slot's user value table (it already is). */
    lua_pop(L, 2);
    return name;
  }
  luaL_typeerror(L, arg, "VM name, GUID, object path or vmrepl.Instance");
  return NULL;
}

/* Setting data: CIM-XML / MOF / JSON text, a table of properties (written as JSON), or an
 * Instance (its JSON). The text is left on the stack. */
static const char *check_setting(lua_State *L, int arg) {
  arg = lua_absindex(L, arg);
  switch (lua_type(L, arg)) {
    case LUA_TSTRING: lua_pushvalue(L, arg); return lua_tostring(L, -1);
    case LUA_TTABLE: return encode_json(L, arg);
    default: break;
  }
  if (luaL_testudata(L, arg, INSTANCE_MT)) {
    const vmr_instance *inst = check_instance(L, arg);
    Owned *o = push_owned(L, free_c);
    char *out = NULL;
    vmr_status st = vmr_instance_to_json(inst, &out);
    if (st != VMR_OK) luaL_argerror(L, arg, vmr_last_error_message());
    o->p = out;
    lua_pushstring(L, out);
    owned_release(o);
    lua_remove(L, -2);
    return lua_tostring(L, -1);
  }
  luaL_typeerror(L, arg, "setting data (table, text or vmrepl.Instance)");
  return NULL;
}

/* "snapshot": a recovery point as an Instance of Msvm_VirtualSystemSettingData (from
 * list_recovery_points; its InstanceID is used), its InstanceID string, its sequence number,
 * or nil (NULL: the latest). A string made here is left on the stack. */
static const char *opt_snapshot(lua_State *L, int arg) {
  switch (lua_type(L, arg)) {
    case LUA_TNONE:
    case LUA_TNIL: return NULL;
    case LUA_TSTRING: return lua_tostring(L, arg);
    case LUA_TNUMBER:
      return lua_pushfstring(L, "%I", (LUAI_UACINT)check_range(L, arg, 0, LUA_MAXINTEGER, "snapshot"));
    default: break;
  }
  if (luaL_testudata(L, arg, INSTANCE_MT)) {
    lua_getiuservalue(L, arg, 3);
    const char *cls = lua_tostring(L, -1);
    int is_point = cls && (strcmp(cls, "Msvm_VirtualSystemSettingData") == 0 ||
                           strcmp(cls, "CIM_VirtualSystemSettingData") == 0);
    lua_pop(L, 1);
    if (!is_point)
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "a recovery point (Msvm_VirtualSystemSettingData) is needed, not %s",
                                    cls ? cls : "?"));
    lua_getiuservalue(L, arg, 1);
    lua_getfield(L, -1, "InstanceID");
    if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, arg, "the recovery point has no InstanceID");
    lua_remove(L, -2); /* the values table; the string stays on the stack */
    return lua_tostring(L, -1);
  }
  luaL_typeerror(L, arg, "recovery point (vmrepl.Instance, InstanceID or sequence number) or nil");
  return NULL;
}

/* ---- jobs ----------------------------------------------------------------------------- */

/* Jobs changed during the current vmr_service_dispatch() (C only: no Lua in callbacks). */
typedef struct {
  void **items;
  size_t n, cap;
} Collector;

static _Thread_local Collector *t_collector;

static void on_job_event(vmr_job *job, void *userdata) {
  (void)job;
  Collector *c = t_collector;
  if (!c) return;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    void **p = (void **)realloc(c->items, cap * sizeof *p);
    if (!p) return; /* that event is lost; the job's state is still read on demand */
    c->items = p;
    c->cap = cap;
  }
  c->items[c->n++] = userdata;
}

static Job *check_job_any(lua_State *L, int arg) { return (Job *)luaL_checkudata(L, arg, JOB_MT); }

static vmr_job *check_job(lua_State *L, int arg) {
  Job *j = check_job_any(L, arg);
  if (!j->job) luaL_argerror(L, arg, "vmrepl.Job is closed");
  return j->job;
}

/* A closed Job userdata of the service at `svc` (absolute index), to be filled by a call. */
static Job *push_job_ud(lua_State *L, int svc) {
  Job *j = (Job *)lua_newuserdatauv(L, sizeof(Job), 2);
  j->job = NULL;
  luaL_setmetatable(L, JOB_MT);
  lua_pushvalue(L, svc);
  lua_setiuservalue(L, -2, 1);
  return j;
}

/* Takes ownership of `job` for the Job userdata on top of the stack and registers it for
 * events (the callback's userdata is the Job's address, looked up in a weak table). */
static void job_fill(lua_State *L, Job *j, vmr_job *job) {
  j->job = job;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &JOBS_KEY);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, j);
  lua_pop(L, 1);
  vmr_job_set_callback(job, on_job_event, j);
}

static void job_release(lua_State *L, Job *j) {
  vmr_job *job = j->job;
  j->job = NULL;
  if (!job) return;
  vmr_job_release(job); /* also removes the callback */
  if (L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &JOBS_KEY);
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      lua_rawsetp(L, -2, j);
    }
    lua_pop(L, 1);
  }
}

/* The common tail of job-returning methods: st is the C call's status, `j` the Job userdata
 * pushed before the call (on top of the stack). */
static int finish_job(lua_State *L, Job *j, vmr_status st, vmr_job *job) {
  if (st == VMR_JOB_STARTED && job) {
    job_fill(L, j, job);
    return 1;
  }
  if (job) vmr_job_release(job); /* never expected: a job without 4096 */
  if (st == VMR_OK) {
    lua_pushboolean(L, 1); /* done at once */
    return 1;
  }
  return push_failure(L, st);
}

/* ---- vmrepl.open and the service methods ---------------------------------------------- */

static int l_open(lua_State *L) {
  const char *uri = check_str(L, 1);
  const char *options = NULL;
  if (lua_type(L, 2) == LUA_TTABLE)
    options = encode_json(L, 2);
  else if (lua_type(L, 2) == LUA_TSTRING)
    options = lua_tostring(L, 2);
  else if (!lua_isnoneornil(L, 2))
    luaL_typeerror(L, 2, "table of options");
  Service *s = (Service *)lua_newuserdatauv(L, sizeof(Service), 1);
  s->svc = NULL; /* closed until vmr_open succeeds */
  luaL_setmetatable(L, SERVICE_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  vmr_service *svc = NULL;
  vmr_status st = vmr_open(uri, options, &svc);
  if (st != VMR_OK) {
    vmr_close(svc); /* NULL-safe; never expected */
    return push_failure(L, st);
  }
  s->svc = svc;
  return 1;
}

/* Calls the scheduler's closing(svc) hook, if any; returns 0 or the error left on the stack. */
static int call_closing_hook(lua_State *L, int svc) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SCHEDULER_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_getfield(L, -1, "closing") != LUA_TFUNCTION) {
    lua_pop(L, 2);
    return 0;
  }
  lua_remove(L, -2);
  lua_pushvalue(L, svc);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) return 1;
  return 0;
}

static int svc_close(lua_State *L) {
  Service *s = check_service_any(L, 1);
  vmr_service *svc = s->svc;
  if (!svc) return 0; /* idempotent */
  s->svc = NULL;      /* closed from now on, even if the hook fails */
  int hook_failed = call_closing_hook(L, 1);
  vmr_close(svc); /* cancels running jobs and waits for them */
  if (hook_failed) return lua_error(L);
  return 0;
}

static int svc_gc(lua_State *L) {
  Service *s = check_service_any(L, 1);
  vmr_service *svc = s->svc;
  s->svc = NULL;
  vmr_close(svc);
  return 0;
}

static int svc_tostring(lua_State *L) {
  Service *s = check_service_any(L, 1);
  if (!s->svc) {
    lua_pushliteral(L, "vmrepl.Service (closed)");
    return 1;
  }
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "vmrepl.Service (%s)", lua_tostring(L, -1));
  return 1;
}

static int svc_closed(lua_State *L) {
  lua_pushboolean(L, check_service_any(L, 1)->svc == NULL);
  return 1;
}

static int svc_uri(lua_State *L) {
  check_service_any(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int svc_fd(lua_State *L) {
  lua_pushinteger(L, vmr_service_fd(check_service(L, 1)));
  return 1;
}

/* Calls job:on_progress functions of the changed jobs (array at `arr`). */
static void run_progress_callbacks(lua_State *L, int arr);

static int svc_dispatch(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  Owned *o = push_owned(L, free_std); /* owns the collected array if anything raises */
  Collector c = {NULL, 0, 0};
  Collector *prev = t_collector;
  t_collector = &c;
  vmr_status st = vmr_service_dispatch(svc);
  t_collector = prev;
  o->p = c.items;
  if (st != VMR_OK) return push_failure(L, st);
  lua_createtable(L, (int)c.n, 0);
  int arr = lua_gettop(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &JOBS_KEY);
  lua_Integer n = 0;
  for (size_t k = 0; k < c.n; k++) {
    if (lua_rawgetp(L, -1, c.items[k]) == LUA_TUSERDATA && ((Job *)lua_touserdata(L, -1))->job)
      lua_rawseti(L, arr, ++n);
    else
      lua_pop(L, 1);
  }
  lua_pop(L, 1);
  owned_release(o);
  run_progress_callbacks(L, arr);
  lua_settop(L, arr);
  return 1;
}

static int svc_info(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  Instance *i = push_instance_ud(L);
  vmr_instance *out = NULL;
  vmr_status st = vmr_service_info(svc, &out);
  if (st != VMR_OK) return push_failure(L, st);
  instance_fill(L, i, out);
  return 1;
}

static const char *const DEFINE_FIELDS[] = {"name", "disks", "id", NULL};

/* svc:define_system{name = "web01", disks = {bytes, ...}, id = "GUID"} */
static int svc_define_system(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    lua_pop(L, 1);
    int known = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (const char *const *f = DEFINE_FIELDS; *f; f++) known |= strcmp(*f, lua_tostring(L, -1)) == 0;
    if (!known)
      luaL_argerror(L, 2, lua_pushfstring(L, "unknown field '%s' (name, disks, id)", luaL_tolstring(L, -1, NULL)));
  }
  if (lua_getfield(L, 2, "name") != LUA_TSTRING) luaL_argerror(L, 2, "field 'name' must be a string");
  lua_pop(L, 1);
  int t = lua_getfield(L, 2, "id");
  if (t != LUA_TNIL && t != LUA_TSTRING) luaL_argerror(L, 2, "field 'id' must be a GUID string");
  lua_pop(L, 1);
  if (lua_getfield(L, 2, "disks") != LUA_TTABLE) luaL_argerror(L, 2, "field 'disks' must be an array of sizes in bytes");
  int disks = lua_gettop(L);
  lua_Integer ndisks = (lua_Integer)lua_rawlen(L, disks);
  for (lua_Integer k = 1; k <= ndisks; k++) {
    lua_geti(L, disks, k);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
      luaL_argerror(L, 2, lua_pushfstring(L, "disks[%I] must be a size in bytes (a non-negative integer)", k));
    lua_pop(L, 1);
  }
  /* {"name": ..., "disks": [...], "id": ...}: disks always an array, even empty. */
  SBuf *b = push_sbuf(L);
  Enc e;
  e.L = L;
  e.b = b;
  e.arg = 2;
  strcpy(e.path, "name");
  sbuf_adds(L, b, "{\"name\":");
  lua_getfield(L, 2, "name");
  enc_value(&e, -1, 0);
  lua_pop(L, 1);
  sbuf_adds(L, b, ",\"disks\":[");
  for (lua_Integer k = 1; k <= ndisks; k++) {
    char num[32];
    lua_geti(L, disks, k);
    snprintf(num, sizeof num, "%s" LUA_INTEGER_FMT, k > 1 ? "," : "", (LUAI_UACINT)lua_tointeger(L, -1));
    lua_pop(L, 1);
    sbuf_adds(L, b, num);
  }
  sbuf_adds(L, b, "]");
  if (lua_getfield(L, 2, "id") == LUA_TSTRING) {
    sbuf_adds(L, b, ",\"id\":");
    enc_value(&e, -1, 0);
  }
  lua_pop(L, 1);
  sbuf_adds(L, b, "}");
  Instance *i = push_instance_ud(L);
  vmr_instance *out = NULL;
  vmr_status st = vmr_define_system(svc, b->p, &out);
  if (st != VMR_OK) return push_failure(L, st);
  instance_fill(L, i, out);
  return 1;
}

static int svc_get_system(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  Instance *i = push_instance_ud(L);
  vmr_instance *out = NULL;
  vmr_status st = vmr_get_system(svc, cs, &out);
  if (st != VMR_OK) return push_failure(L, st);
  instance_fill(L, i, out);
  return 1;
}

typedef vmr_status (*ListFn)(vmr_service *, vmr_list **);

static int list_result(lua_State *L, vmr_service *svc, ListFn fn) {
  Owned *o = push_owned(L, free_list);
  vmr_list *list = NULL;
  vmr_status st = fn(svc, &list);
  if (st != VMR_OK) return push_failure(L, st);
  o->p = list;
  push_list_items(L, -1, list);
  return 1;
}

static int svc_list_systems(lua_State *L) { return list_result(L, check_service(L, 1), vmr_list_systems); }
static int svc_list_jobs(lua_State *L) { return list_result(L, check_service(L, 1), vmr_list_jobs); }
static int svc_list_authorization_entries(lua_State *L) {
  return list_result(L, check_service(L, 1), vmr_list_authorization_entries);
}

static int svc_list_recovery_points(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  Owned *o = push_owned(L, free_list);
  vmr_list *list = NULL;
  vmr_status st = vmr_list_recovery_points(svc, cs, &list);
  if (st != VMR_OK) return push_failure(L, st);
  o->p = list;
  push_list_items(L, -1, list);
  return 1;
}

static int svc_destroy_system(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  vmr_status st = vmr_destroy_system(svc, check_cs(L, 2));
  if (st != VMR_OK) return push_failure(L, st);
  lua_pushboolean(L, 1);
  return 1;
}

/* svc:request_state_change(vm, state) -> true (done at once) | job | nil, message, code */
static int svc_request_state_change(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  uint16_t state = (uint16_t)check_range(L, 3, 0, UINT16_MAX, "state");
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_request_state_change(svc, cs, state, &job);
  return finish_job(L, j, st, job);
}

static int svc_disk_path(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  uint32_t disk = (uint32_t)opt_range(L, 3, 0, 0, UINT32_MAX, "disk");
  Owned *o = push_owned(L, free_c);
  char *path = NULL;
  vmr_status st = vmr_disk_path(svc, cs, disk, &path);
  if (st != VMR_OK) return push_failure(L, st);
  o->p = path;
  lua_pushstring(L, path);
  owned_release(o);
  return 1;
}

/* svc:disk_mark_dirty(vm, disk, offset, length) -> true: the change feed (a durable report of
 * a write; cycles then send the reported blocks without scanning). */
static int svc_disk_mark_dirty(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  uint32_t disk = (uint32_t)check_range(L, 3, 0, UINT32_MAX, "disk");
  uint64_t offset = (uint64_t)check_range(L, 4, 0, LUA_MAXINTEGER, "offset");
  uint64_t length = (uint64_t)check_range(L, 5, 0, LUA_MAXINTEGER, "length");
  vmr_status st = vmr_disk_mark_dirty(svc, cs, disk, offset, length);
  if (st != VMR_OK) return push_failure(L, st);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- bandwidth limits (ABI 4): bytes/s, 0 = none; no vm = the whole service ---- */

/* An optional "computer_system": nil or absent is NULL (the whole service). */
static const char *opt_cs(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return NULL;
  return check_cs(L, arg);
}

/* svc:set_bandwidth_limit(bytes_per_s [, vm]) -> true */
static int svc_set_bandwidth_limit(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  uint64_t rate = (uint64_t)check_range(L, 2, 0, LUA_MAXINTEGER, "bytes_per_s");
  const char *cs = opt_cs(L, 3);
  vmr_status st = vmr_set_bandwidth_limit(svc, cs, rate);
  if (st != VMR_OK) return push_failure(L, st);
  lua_pushboolean(L, 1);
  return 1;
}

/* svc:bandwidth_limit([vm]) -> bytes_per_s (0 = none) */
static int svc_bandwidth_limit(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = opt_cs(L, 2);
  uint64_t rate = 0;
  vmr_status st = vmr_get_bandwidth_limit(svc, cs, &rate);
  if (st != VMR_OK) return push_failure(L, st);
  push_u64(L, rate);
  return 1;
}

/* The job-returning methods that take (svc, cs). */
typedef vmr_status (*CsJobFn)(vmr_service *, const char *, vmr_job **);

static int cs_job(lua_State *L, CsJobFn fn) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = fn(svc, cs, &job);
  return finish_job(L, j, st, job);
}

static int svc_compute_digest(lua_State *L) { return cs_job(L, vmr_compute_digest); }
static int svc_remove_replication_relationship(lua_State *L) { return cs_job(L, vmr_remove_replication_relationship); }
static int svc_replicate_now(lua_State *L) { return cs_job(L, vmr_replicate_now); }

/* The job-returning methods that take (svc, cs, setting data). */
typedef vmr_status (*CsSdJobFn)(vmr_service *, const char *, const char *, vmr_job **);

static int cs_sd_job(lua_State *L, CsSdJobFn fn) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  const char *sd = check_setting(L, 3);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = fn(svc, cs, sd, &job);
  return finish_job(L, j, st, job);
}

static int svc_create_replication_relationship(lua_State *L) {
  return cs_sd_job(L, vmr_create_replication_relationship);
}
static int svc_modify_replication_settings(lua_State *L) { return cs_sd_job(L, vmr_modify_replication_settings); }

/* The job-returning methods that take (svc, setting data). */
typedef vmr_status (*SdJobFn)(vmr_service *, const char *, vmr_job **);

static int sd_job(lua_State *L, SdJobFn fn) {
  vmr_service *svc = check_service(L, 1);
  const char *sd = check_setting(L, 2);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = fn(svc, sd, &job);
  return finish_job(L, j, st, job);
}

static int svc_modify_service_settings(lua_State *L) { return sd_job(L, vmr_modify_service_settings); }
static int svc_add_authorization_entry(lua_State *L) { return sd_job(L, vmr_add_authorization_entry); }
static int svc_modify_authorization_entry(lua_State *L) { return sd_job(L, vmr_modify_authorization_entry); }

static int svc_remove_authorization_entry(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *host = check_str(L, 2);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_remove_authorization_entry(svc, host, &job);
  return finish_job(L, j, st, job);
}

/* svc:start_replication(vm, type = 1, export_location = nil, start_time = nil) */
static int svc_start_replication(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  uint16_t type = (uint16_t)opt_range(L, 3, 1, 0, UINT16_MAX, "type");
  const char *export_location = opt_str(L, 4);
  const char *start_time = opt_str(L, 5);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_start_replication(svc, cs, type, export_location, start_time, &job);
  return finish_job(L, j, st, job);
}

/* svc:request_replication_state_change(vm, state): 7 suspend, 3 resume, 9 cancel a
 * resynchronization; VM off: 4 prepare a planned failover (primary), 2 make an old primary a
 * replica after an unplanned failover */
static int svc_request_replication_state_change(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  uint16_t state = (uint16_t)check_range(L, 3, 0, UINT16_MAX, "state");
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_request_replication_state_change(svc, cs, state, &job);
  return finish_job(L, j, st, job);
}

/* ---- failover, test failover and reverse (ABI 3) ---- */

/* svc:initiate_failover(vm, snapshot = nil): the point (nil: the latest) becomes the VM's disks */
static int svc_initiate_failover(lua_State *L) {
  lua_settop(L, 3);
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  const char *snapshot = opt_snapshot(L, 3);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_initiate_failover(svc, cs, snapshot, &job);
  return finish_job(L, j, st, job);
}

static int svc_revert_failover(lua_State *L) { return cs_job(L, vmr_revert_failover); }
static int svc_commit_failover(lua_State *L) { return cs_job(L, vmr_commit_failover); }

/* svc:test_replica_system(vm, snapshot = nil): the job's ResultingSystem is the test VM */
static int svc_test_replica_system(lua_State *L) {
  lua_settop(L, 3);
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  const char *snapshot = opt_snapshot(L, 3);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_test_replica_system(svc, cs, snapshot, &job);
  return finish_job(L, j, st, job);
}

/* svc:reverse_replication_relationship(vm, settings, {verify = "full"} = nil). A verify other
 * than nil or "full" is the engine's kind of failure (nil, message, 32773), not misuse. */
static int svc_reverse_replication_relationship(lua_State *L) {
  lua_settop(L, 4); /* check_setting pushes the text: the options stay at 4 */
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  const char *sd = check_setting(L, 3);
  uint32_t flags = 0;
  const char *bad_verify = NULL;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "verify") != 0)
        luaL_argerror(L, 4, lua_pushfstring(L, "unknown option '%s' (verify)", luaL_tolstring(L, -1, NULL)));
    }
    int t = lua_getfield(L, 4, "verify");
    if (t == LUA_TSTRING) {
      if (strcmp(lua_tostring(L, -1), "full") == 0)
        flags |= VMR_REVERSE_VERIFY_FULL;
      else
        bad_verify = lua_tostring(L, -1);
    } else if (t != LUA_TNIL) {
      luaL_argerror(L, 4, "option 'verify' must be a string (\"full\") or nil");
    }
  }
  if (bad_verify)
    return push_failure_msg(L, VMR_INVALID_PARAMETER,
                            lua_pushfstring(L, "verify '%s' is not supported (nil or \"full\")", bad_verify));
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = flags ? vmr_reverse_replication_relationship_ex(svc, cs, sd, flags, &job)
                        : vmr_reverse_replication_relationship(svc, cs, sd, &job);
  return finish_job(L, j, st, job);
}

/* svc:resynchronize(vm, start_time = nil) */
static int svc_resynchronize(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  const char *start_time = opt_str(L, 3);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_resynchronize(svc, cs, start_time, &job);
  return finish_job(L, j, st, job);
}

/* svc:test_replication_connection(point, port, authentication_type = 1, thumbprint = nil) */
static int svc_test_replication_connection(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *point = check_str(L, 2);
  uint16_t port = (uint16_t)check_range(L, 3, 0, UINT16_MAX, "port");
  uint16_t auth = (uint16_t)opt_range(L, 4, 1, 0, UINT16_MAX, "authentication_type");
  const char *thumbprint = opt_str(L, 5);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_test_replication_connection(svc, point, port, auth, thumbprint, &job);
  return finish_job(L, j, st, job);
}

typedef vmr_status (*CsInstFn)(vmr_service *, const char *, vmr_instance **);

static int cs_instance(lua_State *L, CsInstFn fn) {
  vmr_service *svc = check_service(L, 1);
  const char *cs = check_cs(L, 2);
  Instance *i = push_instance_ud(L);
  vmr_instance *out = NULL;
  vmr_status st = fn(svc, cs, &out);
  if (st != VMR_OK) return push_failure(L, st);
  instance_fill(L, i, out);
  return 1;
}

static int svc_get_replication_statistics(lua_State *L) { return cs_instance(L, vmr_get_replication_statistics); }
static int svc_get_replication_settings(lua_State *L) { return cs_instance(L, vmr_get_replication_settings); }

static int svc_get_service_settings(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  Instance *i = push_instance_ud(L);
  vmr_instance *out = NULL;
  vmr_status st = vmr_get_service_settings(svc, &out);
  if (st != VMR_OK) return push_failure(L, st);
  instance_fill(L, i, out);
  return 1;
}

static int svc_get_job(lua_State *L) {
  vmr_service *svc = check_service(L, 1);
  const char *id = check_str(L, 2);
  Job *j = push_job_ud(L, 1);
  vmr_job *job = NULL;
  vmr_status st = vmr_get_job(svc, id, &job);
  if (st != VMR_OK) {
    vmr_job_release(job);
    return push_failure(L, st);
  }
  job_fill(L, j, job);
  return 1;
}

/* ---- job methods ---------------------------------------------------------------------- */

/* Pushes the job's property snapshot (an Instance), or returns nonzero after pushing a
 * failure triple. */
static int push_job_props(lua_State *L, vmr_job *job, vmr_status *st_out) {
  Instance *i = push_instance_ud(L);
  vmr_instance *out = NULL;
  vmr_status st = vmr_job_get(job, &out);
  *st_out = st;
  if (st != VMR_OK) return 1;
  instance_fill(L, i, out);
  return 0;
}

static int is_final_state(uint16_t s) { return s == 7 || s == 8 || s == 9 || s == 10; }

/* true, or nil, message, code for a final job that did not complete (its ErrorCode and
 * ErrorDescription); nil, message, 32772 for a job not final yet. */
static int job_outcome(lua_State *L, vmr_job *job) {
  uint16_t state = vmr_job_state(job);
  if (state == 7) {
    lua_pushboolean(L, 1);
    return 1;
  }
  vmr_status st;
  if (push_job_props(L, job, &st)) return push_failure(L, st);
  int props = lua_gettop(L);
  lua_getiuservalue(L, props, 1);
  int values = lua_gettop(L);
  if (!is_final_state(state)) {
    lua_getfield(L, values, "Name");
    return push_failure_msg(L, VMR_TIMEOUT,
                            lua_pushfstring(L, "job %s is not finished (JobState %d)",
                                            lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", (int)state));
  }
  lua_Integer code = 0;
  if (lua_getfield(L, values, "ErrorCode") == LUA_TNUMBER) code = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (code == 0) code = (lua_Integer)vmr_job_error_code(job);
  if (code == 0) code = VMR_FAILED;
  luaL_pushfail(L);
  if (lua_getfield(L, values, "ErrorDescription") != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
    lua_pop(L, 1);
    lua_getfield(L, values, "Name");
    lua_pushfstring(L, "job %s ended in JobState %d", lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", (int)state);
    lua_remove(L, -2);
  }
  lua_pushinteger(L, code);
  return 3;
}

/* Blocking wait: timeout_ms < 0 waits forever. */
static int job_wait_blocking(lua_State *L, vmr_job *job, int64_t timeout_ms) {
  vmr_status st = vmr_job_wait(job, timeout_ms);
  if (st == VMR_TIMEOUT && !is_final_state(vmr_job_state(job))) return push_failure(L, st);
  if (st != VMR_OK && st != VMR_TIMEOUT) return push_failure(L, st);
  return job_outcome(L, job);
}

/* Timeout in seconds (nil or math.huge: forever) -> milliseconds (-1: forever). */
static int64_t check_timeout(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return -1;
  if (lua_type(L, arg) != LUA_TNUMBER) luaL_typeerror(L, arg, "number of seconds");
  lua_Number t = lua_tonumber(L, arg);
  if (isnan(t) || t < 0) luaL_argerror(L, arg, "timeout must be >= 0 seconds");
  if (t == HUGE_VAL || t * 1000.0 >= 9.2e18) return -1;
  return (int64_t)ceil(t * 1000.0);
}

/* After the scheduler's wait returned: its results, or a blocking wait when it gave none
 * (it declined: not under a running loop). Stack: job(1), timeout(2), ..., results. */
static int job_wait_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  int base = (int)ctx;
  int nres = lua_gettop(L) - base;
  if (nres > 0) return nres;
  vmr_job *job = check_job(L, 1);
  return job_wait_blocking(L, job, check_timeout(L, 2));
}

/* job:wait(timeout_s) -> true | nil, message, code */
static int job_wait(lua_State *L) {
  vmr_job *job = check_job(L, 1);
  int64_t ms = check_timeout(L, 2);
  lua_settop(L, 2);
  if (ms != 0 && lua_isyieldable(L)) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SCHEDULER_KEY) == LUA_TTABLE &&
        lua_getfield(L, -1, "wait") == LUA_TFUNCTION) {
      lua_remove(L, -2);
      int base = lua_gettop(L) - 1; /* results land above job, timeout */
      lua_pushvalue(L, 1);
      lua_pushvalue(L, 2);
      lua_callk(L, 2, LUA_MULTRET, (lua_KContext)base, job_wait_k);
      return job_wait_k(L, LUA_OK, (lua_KContext)base);
    }
    lua_settop(L, 2);
  }
  return job_wait_blocking(L, job, ms);
}

static int job_state(lua_State *L) {
  lua_pushinteger(L, vmr_job_state(check_job(L, 1)));
  return 1;
}

static int job_done(lua_State *L) {
  lua_pushboolean(L, is_final_state(vmr_job_state(check_job(L, 1))));
  return 1;
}

static int job_error_code(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vmr_job_error_code(check_job(L, 1)));
  return 1;
}

static int job_properties(lua_State *L) {
  vmr_job *job = check_job(L, 1);
  vmr_status st;
  if (push_job_props(L, job, &st)) return push_failure(L, st);
  return 1;
}

/* Reads one property of the job's snapshot; pushes it. */
static void job_field(lua_State *L, const char *name) {
  vmr_job *job = check_job(L, 1);
  vmr_status st;
  if (push_job_props(L, job, &st)) {
    lua_pushnil(L);
    return;
  }
  lua_getiuservalue(L, -1, 1);
  lua_getfield(L, -1, name);
}

static int job_id(lua_State *L) {
  job_field(L, "InstanceID");
  return 1;
}

static int job_name(lua_State *L) {
  job_field(L, "Name");
  return 1;
}

static int job_type(lua_State *L) {
  job_field(L, "JobType");
  return 1;
}

/* Pushes {percent, bytes_done, bytes_total, rate, eta, phase} from the values table at `v`. */
static void push_progress(lua_State *L, int v) {
  v = lua_absindex(L, v);
  lua_createtable(L, 0, 6);
  static const struct {
    const char *key, *prop;
  } map[] = {{"percent", "PercentComplete"}, {"bytes_done", "BytesDone"}, {"bytes_total", "BytesTotal"},
             {"rate", "RateBytesPerSecond"}, {"eta", "EtaSeconds"},       {"phase", "Phase"}};
  for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
    int t = lua_getfield(L, v, map[k].prop);
    if (t == LUA_TNIL && strcmp(map[k].key, "eta") != 0) {
      lua_pop(L, 1);
      if (strcmp(map[k].key, "phase") == 0)
        lua_pushliteral(L, "");
      else
        lua_pushinteger(L, 0);
    }
    lua_setfield(L, -2, map[k].key);
  }
}

static int job_progress(lua_State *L) {
  vmr_job *job = check_job(L, 1);
  vmr_status st;
  if (push_job_props(L, job, &st)) return push_failure(L, st);
  lua_getiuservalue(L, -1, 1);
  push_progress(L, -1);
  return 1;
}

static int job_cancel(lua_State *L) {
  vmr_status st = vmr_job_cancel(check_job(L, 1));
  if (st != VMR_OK) return push_failure(L, st);
  lua_pushboolean(L, 1);
  return 1;
}

static int job_service(lua_State *L) {
  check_job_any(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

/* job:on_progress(fn): fn(progress, job) from svc:dispatch() after each change; nil removes */
static int job_on_progress(lua_State *L) {
  check_job(L, 1);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 2);
  return 0;
}

static void run_progress_callbacks(lua_State *L, int arr) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, arr);
  for (lua_Integer k = 1; k <= n; k++) {
    lua_rawgeti(L, arr, k);
    int job = lua_gettop(L);
    Job *j = (Job *)lua_touserdata(L, job);
    if (j->job && lua_getiuservalue(L, job, 2) == LUA_TFUNCTION) {
      vmr_status st;
      if (push_job_props(L, j->job, &st) == 0) {
        lua_getiuservalue(L, -1, 1);
        push_progress(L, -1);
        lua_replace(L, -3); /* progress where the props were */
        lua_pop(L, 1);
        lua_pushvalue(L, job);
        lua_call(L, 2, 0);
      }
    }
    lua_settop(L, job - 1);
  }
}

static int job_close(lua_State *L) {
  job_release(L, check_job_any(L, 1));
  return 0;
}

static int job_gc(lua_State *L) {
  job_release(NULL, check_job_any(L, 1)); /* the weak table already dropped it */
  return 0;
}

static int job_tostring(lua_State *L) {
  Job *j = check_job_any(L, 1);
  if (!j->job) {
    lua_pushliteral(L, "vmrepl.Job (closed)");
    return 1;
  }
  vmr_status st;
  if (push_job_props(L, j->job, &st)) {
    lua_pushfstring(L, "vmrepl.Job (%p)", (void *)j);
    return 1;
  }
  lua_getiuservalue(L, -1, 1);
  lua_getfield(L, -1, "InstanceID");
  lua_getfield(L, -2, "Name");
  lua_pushfstring(L, "vmrepl.Job (%s %s, JobState %d)", lua_isstring(L, -2) ? lua_tostring(L, -2) : "?",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "?", (int)vmr_job_state(j->job));
  return 1;
}

/* ---- module functions ----------------------------------------------------------------- */

static int l_version(lua_State *L) {
  lua_pushstring(L, vmr_version());
  return 1;
}

static int l_abi_version(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vmr_abi_version());
  return 1;
}

static int l_status_name(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_pushstring(L, vmr_status_name((vmr_status)(n < 0 || n > (lua_Integer)UINT32_MAX ? UINT32_MAX : n)));
  return 1;
}

/* vmrepl.set_scheduler{wait = fn(job, timeout), closing = fn(svc)} or nil; returns the old one.
 * wait runs instead of the blocking wait when job:wait() is called from a coroutine that can
 * yield; it returns job:wait()'s results, or nothing to let the wait block. closing runs in
 * svc:close() before the service is released. */
static int l_set_scheduler(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int t = lua_getfield(L, 1, "wait");
    if (t != LUA_TNIL && t != LUA_TFUNCTION) luaL_argerror(L, 1, "field 'wait' must be a function");
    t = lua_getfield(L, 1, "closing");
    if (t != LUA_TNIL && t != LUA_TFUNCTION) luaL_argerror(L, 1, "field 'closing' must be a function");
  }
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &SCHEDULER_KEY);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SCHEDULER_KEY);
  return 1;
}

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  encode_json(L, 1);
  return 1;
}

static int l_json_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  decode_json(L, s, n);
  return 1;
}

/* ---- constants ------------------------------------------------------------------------ */

typedef struct {
  const char *name;
  lua_Integer value;
} Const;

/* VMR_STATUS_MAP names are C style (INVALID_STATE); the tables use the model's names. */
static const Const STATUS_NAMES[] = {
    {"OK", 0}, {"JobStarted", 4096}, {"Failed", 32768}, {"AccessDenied", 32769}, {"NotSupported", 32770},
    {"Unknown", 32771}, {"Timeout", 32772}, {"InvalidParameter", 32773}, {"SystemInUse", 32774},
    {"InvalidState", 32775}, {"IncorrectDataType", 32776}, {"SystemNotAvailable", 32777},
    {"OutOfMemory", 32778}, {"FileNotFound", 32779}, {NULL, 0}};

static const Const REPLICATION_STATE[] = {
    {"Disabled", 0}, {"ReadyForReplication", 1}, {"WaitingToCompleteInitialReplication", 2}, {"Replicating", 3},
    {"SyncedReplicationComplete", 4}, {"Recovered", 5}, {"Committed", 6}, {"Suspended", 7}, {"Critical", 8},
    {"WaitingToStartResynchronization", 9}, {"Resynchronizing", 10}, {"ResynchronizationSuspended", 11},
    {"FailoverInProgress", 12}, {"FailbackInProgress", 13}, {"FailbackComplete", 14},
    {"DiskUpdateInProgress", 15}, {"DiskUpdateCritical", 16}, {"Unknown", 17},
    {"RepurposeReplicationInProgress", 18}, {"PreparedForSyncReplication", 19},
    {"PreparedForGroupReverseReplication", 20}, {"FiredrillInProgress", 21}, {NULL, 0}};

static const Const REPLICATION_MODE[] = {
    {"None", 0}, {"Primary", 1}, {"Replica", 2}, {"TestReplica", 3}, {"ExtendedReplica", 4}, {NULL, 0}};

static const Const REPLICATION_HEALTH[] = {
    {"NotApplicable", 0}, {"Ok", 1}, {"Warning", 2}, {"Critical", 3}, {NULL, 0}};

static const Const JOB_STATE[] = {
    {"New", 2}, {"Starting", 3}, {"Running", 4}, {"Suspended", 5}, {"ShuttingDown", 6}, {"Completed", 7},
    {"Terminated", 8}, {"Killed", 9}, {"Exception", 10}, {"Service", 11}, {"QueryPending", 12}, {NULL, 0}};

static const Const JOB_TYPE[] = {
    {"ModifyReplicationServerSettings", 90}, {"CreateReplicationRelationship", 91},
    {"ModifyReplicationRelationshipSettings", 92}, {"RemoveReplicationRelationship", 93},
    {"StartInbandInitialReplication", 94}, {"ImportReplication", 95}, {"ReplicateStateChange", 96},
    {"InitiateFailover", 97}, {"RevertFailover", 98}, {"CommitFailover", 99},
    {"InitiateSyncedReplication", 100}, {"CancelSyncedReplication", 101}, {"InitiateTestReplica", 102},
    {"RemoveTestReplica", 103}, {"ReverseReplication", 104}, {"ReplicationSendingDelta", 105},
    {"ReplicationReceivingDelta", 106}, {"Resynchronizing", 107}, {"ApplyChangeLog", 108},
    {"StopInitialReplication", 109}, {"StopResynchronizing", 110}, {"GetReplicaStatistics", 111},
    {"ConsistencyCheckerPrepare", 112}, {"ConsistencyCheckerRun", 113}, {"ConsistencyCheckerStop", 114},
    {"TestReplicationConnection", 115}, {"SendingInitialReplica", 116}, {"StartResyncInitialReplication", 117},
    {"StartExportInitialReplication", 118}, {"ResetReplicaStatistics", 119}, {"ApplyRegisteredDeltas", 120},
    {"ResynchronizingExtendedReplication", 121}, {"ReadingTestReplicaConfiguration", 122},
    {"ChangeReplicationModeToPrimary", 123}, {"InitiateFailback", 124}, {"UpdateDiskSet", 125}, {NULL, 0}};

static const Const REQUESTED_STATE[] = {
    {"Ready", 1}, {"WaitingToCompleteInitialReplication", 2}, {"Replicating", 3},
    {"SyncedReplicationComplete", 4}, {"Suspend", 7}, {"CancelResynchronize", 9}, {NULL, 0}};

/* The first name of a number is the one reverse lookups give. */
static const Const ENABLED_STATE[] = {
    {"Unknown", 0}, {"Enabled", 2}, {"Disabled", 3}, {"EnabledButOffline", 6}, {"Quiesce", 9}, {"Starting", 10},
    {"Running", 2}, {"Off", 3}, {"Saved", 6}, {"Paused", 9}, {NULL, 0}};

static const Const INITIAL_REPLICATION_TYPE[] = {{"Network", 1}, {"Export", 2}, {"Seeded", 3}, {NULL, 0}};

static const Const REPLICATION_TYPE[] = {
    {"None", 0}, {"Regular", 1}, {"ApplicationConsistent", 2}, {"Planned", 3}, {NULL, 0}};

static const Const AUTHENTICATION_TYPE[] = {{"Kerberos", 1}, {"Certificate", 2}, {NULL, 0}};

static const Const JOB_REQUESTED_STATE[] = {
    {"Start", 2}, {"Suspend", 3}, {"Terminate", 4}, {"Kill", 5}, {"Service", 6}, {NULL, 0}};

static const Const CIM_TYPE[] = {
    {"Boolean", VMR_TYPE_BOOLEAN}, {"UInt8", VMR_TYPE_UINT8},   {"SInt8", VMR_TYPE_SINT8},
    {"UInt16", VMR_TYPE_UINT16},   {"SInt16", VMR_TYPE_SINT16}, {"UInt32", VMR_TYPE_UINT32},
    {"SInt32", VMR_TYPE_SINT32},   {"UInt64", VMR_TYPE_UINT64}, {"SInt64", VMR_TYPE_SINT64},
    {"Real64", VMR_TYPE_REAL64},   {"String", VMR_TYPE_STRING}, {"DateTime", VMR_TYPE_DATETIME},
    {"Reference", VMR_TYPE_REFERENCE}, {NULL, 0}};

/* __index of a constants table: a number gives its name (vmrepl.JobState[7] == "Completed"),
 * an unknown name raises (a typo is a bug, not nil). Upvalue 1: reverse map, 2: table name. */
static int const_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
  }
  return luaL_error(L, "%s has no member '%s'", lua_tostring(L, lua_upvalueindex(2)), luaL_tolstring(L, 2, NULL));
}

static void add_constants(lua_State *L, const char *name, const Const *c) {
  lua_newtable(L);
  lua_newtable(L); /* metatable */
  lua_newtable(L); /* reverse */
  for (; c->name; c++) {
    lua_pushinteger(L, c->value);
    lua_setfield(L, -4, c->name);
    lua_rawgeti(L, -1, c->value);
    if (lua_isnil(L, -1)) {
      lua_pushstring(L, c->name);
      lua_rawseti(L, -3, c->value);
    }
    lua_pop(L, 1);
  }
  lua_pushfstring(L, "vmrepl.%s", name);
  lua_pushcclosure(L, const_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushfstring(L, "vmrepl.%s", name);
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, name);
}

/* ---- registration --------------------------------------------------------------------- */

static const luaL_Reg SERVICE_METHODS[] = {
    {"info", svc_info},
    {"define_system", svc_define_system},
    {"get_system", svc_get_system},
    {"list_systems", svc_list_systems},
    {"destroy_system", svc_destroy_system},
    {"request_state_change", svc_request_state_change},
    {"disk_path", svc_disk_path},
    {"disk_mark_dirty", svc_disk_mark_dirty},
    {"set_bandwidth_limit", svc_set_bandwidth_limit},
    {"bandwidth_limit", svc_bandwidth_limit},
    {"compute_digest", svc_compute_digest},
    {"get_job", svc_get_job},
    {"list_jobs", svc_list_jobs},
    {"create_replication_relationship", svc_create_replication_relationship},
    {"start_replication", svc_start_replication},
    {"modify_replication_settings", svc_modify_replication_settings},
    {"remove_replication_relationship", svc_remove_replication_relationship},
    {"request_replication_state_change", svc_request_replication_state_change},
    {"resynchronize", svc_resynchronize},
    {"replicate_now", svc_replicate_now},
    {"test_replication_connection", svc_test_replication_connection},
    {"get_replication_statistics", svc_get_replication_statistics},
    {"get_replication_settings", svc_get_replication_settings},
    {"list_recovery_points", svc_list_recovery_points},
    {"initiate_failover", svc_initiate_failover},
    {"revert_failover", svc_revert_failover},
    {"commit_failover", svc_commit_failover},
    {"test_replica_system", svc_test_replica_system},
    {"reverse_replication_relationship", svc_reverse_replication_relationship},
    {"modify_service_settings", svc_modify_service_settings},
    {"get_service_settings", svc_get_service_settings},
    {"add_authorization_entry", svc_add_authorization_entry},
    {"modify_authorization_entry", svc_modify_authorization_entry},
    {"remove_authorization_entry", svc_remove_authorization_entry},
    {"list_authorization_entries", svc_list_authorization_entries},
    {"fd", svc_fd},
    {"dispatch", svc_dispatch},
    {"close", svc_close},
    {"closed", svc_closed},
    {"uri", svc_uri},
    {NULL, NULL}};

static const luaL_Reg SERVICE_META[] = {
    {"__gc", svc_gc}, {"__close", svc_close}, {"__tostring", svc_tostring}, {"__index", NULL}, {NULL, NULL}};

static const luaL_Reg JOB_METHODS[] = {
    {"wait", job_wait},           {"state", job_state},     {"done", job_done},
    {"error_code", job_error_code}, {"progress", job_progress}, {"properties", job_properties},
    {"cancel", job_cancel},       {"id", job_id},           {"name", job_name},
    {"job_type", job_type},       {"service", job_service}, {"on_progress", job_on_progress},
    {"close", job_close},         {NULL, NULL}};

static const luaL_Reg JOB_META[] = {
    {"__gc", job_gc}, {"__close", job_close}, {"__tostring", job_tostring}, {"__index", NULL}, {NULL, NULL}};

static const luaL_Reg INSTANCE_METHODS[] = {
    {"to_json", inst_to_json}, {"to_cim_xml", inst_to_cim_xml}, {"to_mof", inst_to_mof},
    {"to_table", inst_to_table}, {"class_name", inst_class_name}, {"names", inst_names},
    {"type", inst_type},       {"close", inst_close},         {NULL, NULL}};

static const luaL_Reg INSTANCE_META[] = {
    {"__gc", inst_gc},         {"__close", inst_close}, {"__tostring", inst_tostring},
    {"__newindex", inst_newindex}, {"__pairs", inst_pairs}, {NULL, NULL}};

static const luaL_Reg MODULE_FUNCS[] = {
    {"open", l_open},
    {"version", l_version},
    {"abi_version", l_abi_version},
    {"status_name", l_status_name},
    {"set_scheduler", l_set_scheduler},
    {"json_encode", l_json_encode},
    {"json_decode", l_json_decode},
    {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

VMRL_EXPORT int luaopen_vmrepl(lua_State *L) {
  if (vmr_abi_version() < VMR_ABI_VERSION)
    return luaL_error(L, "libvmrepl ABI %d is older than this binding's %d (vmrepl %s)", (int)vmr_abi_version(),
                      (int)VMR_ABI_VERSION, vmr_version());

  luaL_newmetatable(L, OWNED_MT);
  lua_pushcfunction(L, owned_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  new_class(L, SERVICE_MT, SERVICE_META, SERVICE_METHODS);
  new_class(L, JOB_MT, JOB_META, JOB_METHODS);

  /* Instance: __index is a function (methods first, then properties). */
  luaL_newmetatable(L, INSTANCE_MT);
  luaL_setfuncs(L, INSTANCE_META, 0);
  luaL_newlibtable(L, INSTANCE_METHODS);
  luaL_setfuncs(L, INSTANCE_METHODS, 0);
  lua_pushcclosure(L, inst_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  /* Job events: Job address -> Job userdata, weak so it never keeps a job alive. */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &JOBS_KEY) != LUA_TTABLE) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &JOBS_KEY);
  }
  lua_pop(L, 1);

  luaL_newlib(L, MODULE_FUNCS);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushinteger(L, VMR_ABI_VERSION);
  lua_setfield(L, -2, "ABI_VERSION");
  lua_pushstring(L, vmr_version());
  lua_setfield(L, -2, "VERSION");

  add_constants(L, "Status", STATUS_NAMES);
  add_constants(L, "ReplicationState", REPLICATION_STATE);
  add_constants(L, "ReplicationMode", REPLICATION_MODE);
  add_constants(L, "ReplicationHealth", REPLICATION_HEALTH);
  add_constants(L, "JobState", JOB_STATE);
  add_constants(L, "JobType", JOB_TYPE);
  add_constants(L, "RequestedState", REQUESTED_STATE);
  add_constants(L, "EnabledState", ENABLED_STATE);
  add_constants(L, "InitialReplicationType", INITIAL_REPLICATION_TYPE);
  add_constants(L, "ReplicationType", REPLICATION_TYPE);
  add_constants(L, "AuthenticationType", AUTHENTICATION_TYPE);
  add_constants(L, "JobRequestedState", JOB_REQUESTED_STATE);
  add_constants(L, "CimType", CIM_TYPE);
  return 1;
}
