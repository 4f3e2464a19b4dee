"""Parts of the Train page that are not pages: the live charts' browser component."""
