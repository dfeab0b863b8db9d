// Synchronisation between tasks of one loop: semaphore and event (each has
// its own header; this one includes both).
#pragma once

#include <grove/event.hpp>
#include <grove/semaphore.hpp>
