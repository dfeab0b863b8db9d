// Everything grove offers, in one include.
#pragma once

#include <grove/awaitable.hpp>
#include <grove/cancel.hpp>
#include <grove/debug.hpp>
#include <grove/errors.hpp>
#include <grove/event.hpp>
#include <grove/event_loop.hpp>
#include <grove/finally.hpp>
#include <grove/gather.hpp>
#include <grove/io.hpp>
#include <grove/outcome.hpp>
#include <grove/process.hpp>
#include <grove/run.hpp>
#include <grove/run_tasks.hpp>
#include <grove/semaphore.hpp>
#include <grove/settle.hpp>
#include <grove/sync.hpp>
#include <grove/task.hpp>
#include <grove/task_group.hpp>
#include <grove/thread.hpp>
#include <grove/time.hpp>
