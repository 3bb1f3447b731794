// tended-coordinator entry point.
int main() { return 0; }
