/* main.c: the mox command dispatcher (filled in below). */
int main(void);
int
main(void)
{
	return 0;
}
