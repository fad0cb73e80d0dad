/* proxy/clock.h: the two clocks the proxy reads (the decoder and router never do). */
#ifndef RT_PROXY_CLOCK_H
#define RT_PROXY_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* Wall clock, microseconds since the epoch: trace timestamps, latencies. */
static inline uint64_t
clock_wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* Monotonic milliseconds: durations and timeouts. */
static inline uint64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif /* RT_PROXY_CLOCK_H */
