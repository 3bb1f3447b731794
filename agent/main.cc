// tended-agent entry point.
int main() { return 0; }
