"""OPTIMADE (Materials-Consortia API v1.2) over the catalog: the filter translator
(:mod:`.filter`), the property definitions (:mod:`.fields`) and the HTTP routes
(:mod:`.api`)."""
