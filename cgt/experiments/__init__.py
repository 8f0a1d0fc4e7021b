"""Each chapter's experiment grid, so that a chapter only calls and shows."""
