"""The seats' workbench (坐席工作台) as a domain service, without HTTP: the work-order category tree,
the seats' work-order drafts in Redis, the caller's history from the order system, and each seat's
live view (screen pop, hand-over buttons, state) that the web layer streams to that seat only."""
