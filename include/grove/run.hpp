// Placeholder: filled in by the issue that delivers it.
#pragma once
