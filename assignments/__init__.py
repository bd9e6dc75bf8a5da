"""Course-side code for each assignment (data loading, fixed models); students may import it."""
