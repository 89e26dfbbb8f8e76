"""COSEM object model in pure Python: OBIS codes, interface classes, typed values,
COSEM date-times and the client-side object model built from an object_list."""
