/* proxy/json_util.h: jansson helpers shared by the trace, /stats and /rules. */
#ifndef RT_PROXY_JSON_UTIL_H
#define RT_PROXY_JSON_UTIL_H

#include <stddef.h>

#include <jansson.h>

/* A JSON string from arbitrary bytes: valid UTF-8 is kept, every byte of an invalid
 * sequence becomes U+FFFD.  Never NULL unless out of memory.  (jansson refuses invalid
 * UTF-8, and SQL text routinely holds binary literals.) */
json_t *json_string_lossy(const char *s, size_t n);

#endif /* RT_PROXY_JSON_UTIL_H */
